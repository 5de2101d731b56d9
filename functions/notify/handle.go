// Package function is the notify function of the orders domain: one message per decided order (Trigger notify-decisions), addressed by name from a customers table materialised from the compacted orders-users topic (KafkaSource notify-users).
package function

import "github.com/jobflow/jobflow/pkg/orders/notify"

// Function is the instanced HTTP function.
type Function struct{ *notify.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{notify.NewFunction()} }
