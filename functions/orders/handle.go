// Package function is the orders function of the orders domain: takes orders (POST /orders with an Idempotency-Key, or the CloudEvent dev.jobflow.order.requested), stores them pending, puts order.placed into the orders Broker, and tracks their status from the Trigger orders-status.
package function

import "github.com/jobflow/jobflow/pkg/orders/orders"

// Function is the instanced HTTP function.
type Function struct{ *orders.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{orders.NewFunction()} }
