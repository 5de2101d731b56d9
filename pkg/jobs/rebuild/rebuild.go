// Package rebuild is `jobflow rebuild jobs|job_events`: a view of the jobs
// pipeline made again from the log (the topics the converter writes) into
// a fresh table by the view's own store, compared with the live table, and
// on request swapped in for it.
//
// A swap is one rename: PostgreSQL moves both tables between schemas in one
// transaction; ClickHouse 18.16 has no EXCHANGE TABLES, so one RENAME TABLE
// statement moves both. The live table goes to the Replaced schema or
// database (kept until the next swap). Records the sinks wrote while the
// rebuild ran are then applied to the new table (a catch-up read from
// where the rebuild's read ended): the stores are idempotent, so what the
// sinks also wrote changes nothing.
package rebuild

import (
	"github.com/jobflow/jobflow/pkg/jobs/verify"
	"github.com/jobflow/jobflow/pkg/runtime/viewdiff"
)

// Default names of where fresh tables are built and replaced ones kept:
// a PostgreSQL schema and a ClickHouse database each.
const (
	Fresh    = "jobflow_rebuild"
	Replaced = "jobflow_replaced"
)

// Options of a rebuild.
type Options struct {
	verify.Where
	Fresh    string // "" for Fresh
	Replaced string // "" for Replaced
	Swap     bool   // swap the fresh table in when it differs (or always: Force)
	Force    bool   // swap even when the tables are equal
	Limit    int    // difference lines printed (0: all)
}

func (o *Options) defaults() {
	if o.Fresh == "" {
		o.Fresh = Fresh
	}
	if o.Replaced == "" {
		o.Replaced = Replaced
	}
}

// Diff is how a live table differs from its rebuild.
type Diff = viewdiff.Diff
