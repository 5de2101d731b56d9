// Package function is the counter: it applies Debezium change events of
// the dialogs database's users and messages to per-user counters in the
// counters database, many deliveries per transaction, each exactly once.
package function

import (
	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Function is the instanced CloudEvent function.
type Function struct{ *fn.EventFunction }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function {
	return &Function{fn.NewEventFunction("counter", func() (fn.Handler, error) { return counter.New(), nil })}
}
