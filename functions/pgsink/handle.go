// Package function is pgsink: it writes dev.jobflow.job.row events into the
// PostgreSQL jobs table, many deliveries per transaction (group commit).
package function

import (
	"github.com/jobflow/jobflow/pkg/jobs/pgsink"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Function is the instanced CloudEvent function.
type Function struct{ *fn.EventFunction }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function {
	return &Function{fn.NewEventFunction("pgsink", func() (fn.Handler, error) { return pgsink.New(), nil })}
}
