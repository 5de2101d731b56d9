package function

import (
	"testing"

	"github.com/jobflow/jobflow/pkg/runtime/fn/fntest"
)

func TestShapeAndSafeStart(t *testing.T) {
	fntest.HTTPFunction(t, New, "JOBFLOW_USERS_URL", "ORDERS_JWT_KEY", "K_SINK")
}
