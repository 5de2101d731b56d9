package function

import (
	"testing"

	"github.com/jobflow/jobflow/pkg/runtime/fn/fntest"
)

func TestShapeAndSafeStart(t *testing.T) {
	fntest.HTTPFunction(t, New, "K_SINK", "CONFIG_KAFKA_BROKERS")
}
