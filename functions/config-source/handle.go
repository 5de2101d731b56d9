// Package function is config-source: it reads the configuration Git
// repository on a push webhook (POST /webhook) or its poll, and emits one
// dev.jobflow.config.changed event per changed key to K_SINK, the KafkaSink
// of the compacted config-changes topic.
package function

import "github.com/jobflow/jobflow/pkg/config/source"

// Function is the instanced HTTP function.
type Function struct{ *source.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{source.NewFunction()} }
