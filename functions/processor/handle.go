// Package function is the processor: it takes dev.jobflow.job.created, does
// the job's work and emits dev.jobflow.job.finished (or .failed) to K_SINK.
package function

import (
	"github.com/jobflow/jobflow/pkg/jobs/processor"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Function is the instanced CloudEvent function.
type Function struct{ *fn.EventFunction }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function {
	return &Function{fn.NewEventFunction("processor", func() (fn.Handler, error) { return processor.New() })}
}
