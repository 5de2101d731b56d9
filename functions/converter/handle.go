// Package function is the converter: it turns job events into a Kafka
// Connect JSON-with-schema row (to K_SINK, the PostgreSQL topic) and a CSV
// line (to K_SINK_CLICKHOUSE, the ClickHouse topic).
package function

import (
	"github.com/jobflow/jobflow/pkg/jobs/converter"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Function is the instanced CloudEvent function.
type Function struct{ *fn.EventFunction }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function {
	return &Function{fn.NewEventFunction("converter",
		func() (fn.Handler, error) { return converter.New() }, converter.ClickHouseOutput)}
}
