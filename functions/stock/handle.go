// Package function is the orders saga's stock participant: triggered by
// dev.jobflow.order.placed it tries its reserve and answers
// dev.jobflow.order.validated; triggered by the decision it completes or
// releases the reserve and answers dev.jobflow.order.settled (see
// pkg/orders/stock and docs/ORDERS.md).
package function

import (
	"github.com/jobflow/jobflow/pkg/orders/participant"
	"github.com/jobflow/jobflow/pkg/orders/stock"
)

// Function is the instanced HTTP function.
type Function struct{ *participant.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{participant.NewFunction(stock.Spec)} }
