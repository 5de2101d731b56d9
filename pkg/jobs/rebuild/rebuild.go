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
	"fmt"
	"io"
	"sort"

	"github.com/jobflow/jobflow/pkg/jobs/verify"
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
type Diff struct {
	Live, Rebuilt int      // rows (keys) in each
	Missing       []string // keys the live table lacks
	Extra         []string // keys only the live table has (the log no longer has them, or never had)
	Differ        []string // keys in both with other values
	Swapped       bool
	CaughtUp      int // records applied after the swap
}

// Equal reports whether the live table equals its rebuild.
func (d Diff) Equal() bool { return len(d.Missing)+len(d.Extra)+len(d.Differ) == 0 }

// Print writes the diff, at most limit keys of each kind (0: all).
func (d Diff) Print(out io.Writer, view string, limit int) {
	for _, k := range []struct {
		what string
		keys []string
	}{{"missing in the live table", d.Missing}, {"only in the live table", d.Extra}, {"different", d.Differ}} {
		sort.Strings(k.keys)
		for i, key := range k.keys {
			if limit > 0 && i == limit {
				fmt.Fprintf(out, "  ... and %d more %s\n", len(k.keys)-limit, k.what)
				break
			}
			fmt.Fprintf(out, "  %s: %s\n", k.what, key)
		}
	}
	state := "equal"
	if !d.Equal() {
		state = fmt.Sprintf("DIFFERENT (%d missing, %d only live, %d different)", len(d.Missing), len(d.Extra), len(d.Differ))
	}
	fmt.Fprintf(out, "%s: live %d, rebuilt %d: %s\n", view, d.Live, d.Rebuilt, state)
	if d.Swapped {
		fmt.Fprintf(out, "%s: swapped in; %d records applied after the swap\n", view, d.CaughtUp)
	}
}
