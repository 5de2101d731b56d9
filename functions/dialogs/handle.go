// Package function is the dialogs function: a small HTTP API that writes
// users, messages and read marks into the dialogs database, the source the
// CDC source streams into Kafka.
package function

import "github.com/jobflow/jobflow/pkg/counters/dialogs"

// Function is the instanced HTTP function.
type Function struct{ *dialogs.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{dialogs.NewFunction()} }
