package gitsource

import (
	"bytes"
	"slices"
	"strings"

	"github.com/jobflow/jobflow/pkg/config/change"
)

// Diff is the changes that take the published values (key → its last
// change) to the files of commit revision, key by key: a new or different
// value, or a deletion. A refused key changes nothing: its published value
// stays (a bad value never replaces a good one, and is never read as a
// deletion).
func Diff(files Files, revision string, published map[string]change.Change) []change.Change {
	var out []change.Change
	for key, v := range files.Values {
		cur, ok := published[key]
		if ok && bytes.Equal(cur.Value, v) {
			continue
		}
		c := change.Change{Key: key, Value: v, Revision: revision}
		if ok {
			c.PreviousRevision = cur.Revision
		}
		out = append(out, c)
	}
	for key, cur := range published {
		if _, kept := files.Values[key]; kept {
			continue
		}
		if _, refused := files.Refused[key]; refused {
			continue
		}
		out = append(out, change.Change{Key: key, Deleted: true, Revision: revision, PreviousRevision: cur.Revision})
	}
	slices.SortFunc(out, func(a, b change.Change) int { return strings.Compare(a.Key, b.Key) })
	return out
}
