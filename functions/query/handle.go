// Package function is the query function: GET /info/<job id> answers a
// job's status from PostgreSQL, GET /stats simple analytics from ClickHouse.
package function

import "github.com/jobflow/jobflow/pkg/jobs/query"

// Function is the instanced HTTP function.
type Function struct{ *query.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{query.NewFunction()} }
