package function

import (
	"testing"

	"github.com/jobflow/jobflow/pkg/runtime/fn/fntest"
)

func TestShapeAndSafeStart(t *testing.T) { fntest.CloudEventFunction(t, New, "JOBFLOW_SAGA_URL") }
