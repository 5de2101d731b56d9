// Package viewdiff is how a live view differs from its rebuild from the
// log, what every `jobflow rebuild` reports, and the PostgreSQL helpers
// the rebuilds share (a fresh schema, a comparison, a swap).
package viewdiff

import (
	"fmt"
	"io"
	"net/url"
	"sort"
)

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

// WithSearchPath is a PostgreSQL URL whose sessions create and find
// unqualified tables in schema: a store opened on it makes its tables there.
func WithSearchPath(pgURL, schema string) (string, error) {
	u, err := url.Parse(pgURL)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("rebuild needs a postgres:// URL: %q", pgURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
