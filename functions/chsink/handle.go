// Package function is chsink: it writes dev.jobflow.job.csv events into the
// ClickHouse job_events table, many deliveries per INSERT (group commit).
package function

import (
	"github.com/jobflow/jobflow/pkg/jobs/chsink"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Function is the instanced CloudEvent function.
type Function struct{ *fn.EventFunction }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function {
	return &Function{fn.NewEventFunction("chsink", func() (fn.Handler, error) { return chsink.New(), nil })}
}
