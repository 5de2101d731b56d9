// Package function is the orders saga's orchestrator: it gathers each
// order's order.placed and the three order.validated answers and emits
// the decision (order.confirmed or order.rejected) to K_SINK, the orders
// Broker; a PingSource drives the sweep that rejects orders past their
// deadline (see pkg/orders/saga and docs/ORDERS.md).
package function

import (
	"github.com/jobflow/jobflow/pkg/orders/saga"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Function is the instanced CloudEvent function.
type Function struct{ *fn.EventFunction }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function {
	return &Function{fn.NewEventFunction("saga", func() (fn.Handler, error) { return saga.New(), nil })}
}
