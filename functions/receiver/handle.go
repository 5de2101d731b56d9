// Package function is the receiver: it takes jobs over HTTP, as the REST
// call POST /create/job or as a dev.jobflow.job.requested CloudEvent on
// POST /, and emits dev.jobflow.job.created to K_SINK.
package function

import "github.com/jobflow/jobflow/pkg/jobs/receiver"

// Function is the instanced HTTP function.
type Function struct{ *receiver.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{receiver.NewFunction()} }
