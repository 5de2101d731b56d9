// Package store materialises the config-changes topic: the current value
// of every key (a Table) and the recent changes in the order of the topic,
// each at its sequence number (the record's offset + 1), which every
// instance reading the same topic agrees on. Subscribers resume from a
// sequence number; the table says whether it still holds every change
// after it (exact resume) or not (a snapshot and a reset instead).
package store

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/jobflow/jobflow/pkg/config/change"
)

// Entry is a change at its position in the topic.
type Entry struct {
	Seq int64 `json:"seq"`
	change.Change
	encoded []byte
}

// JSON is the entry as JSON, encoded once for every subscriber.
func (e Entry) JSON() []byte {
	if e.encoded != nil {
		return e.encoded
	}
	b, _ := json.Marshal(e)
	return b
}

// Table is the current value of every key and the last changes.
type Table struct {
	mu        sync.RWMutex
	values    map[string]Entry
	history   []Entry // contiguous: every change with Seq in (exactFrom, head]
	retain    int
	head      int64
	exactFrom int64
	changed   chan struct{}
	ready     chan struct{}
	readyOnce sync.Once
}

// NewTable keeps the last retain changes for resumption.
func NewTable(retain int) *Table {
	if retain < 1 {
		retain = 1
	}
	return &Table{values: map[string]Entry{}, retain: retain, changed: make(chan struct{}), ready: make(chan struct{})}
}

// Apply records the topic's record at seq: c, or nil for a record that is
// not a change (it still takes its place in the sequence). Records at or
// before the head are ignored (already applied); a jump in the sequence
// (compaction removed records) means the changes before it are no longer
// known one by one. It reports whether subscribers see a change.
func (t *Table) Apply(seq int64, c *change.Change) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq <= t.head {
		return false
	}
	if seq != t.head+1 {
		t.history, t.exactFrom = nil, seq-1
	}
	t.head = seq
	visible := c != nil && !t.same(*c)
	if visible {
		e := Entry{Seq: seq, Change: *c}
		e.encoded, _ = json.Marshal(e)
		if c.Deleted {
			delete(t.values, c.Key)
		} else {
			t.values[c.Key] = e
		}
		t.history = append(t.history, e)
		if over := len(t.history) - t.retain; over > 0 {
			t.exactFrom = t.history[over-1].Seq
			t.history = slices.Clone(t.history[over:])
		}
	}
	close(t.changed)
	t.changed = make(chan struct{})
	return visible
}

// same: c changes nothing (a change sent twice, or the deletion of a key
// that is not there).
func (t *Table) same(c change.Change) bool {
	cur, ok := t.values[c.Key]
	if c.Deleted {
		return !ok
	}
	return ok && cur.Revision == c.Revision && bytes.Equal(cur.Value, c.Value)
}

// Changed is closed at the next Apply.
func (t *Table) Changed() <-chan struct{} {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.changed
}

// Head is the sequence number of the last record applied.
func (t *Table) Head() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.head
}

// Get is a key's current value.
func (t *Table) Get(key string) (Entry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.values[key]
	return e, ok
}

// Snapshot is the current value of every key that match accepts, by key,
// and the head it is the state at.
func (t *Table) Snapshot(match func(string) bool) ([]Entry, int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Entry
	for k, e := range t.values {
		if match(k) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out, t.head
}

// Since is every change after seq that match accepts, in order, and the
// head they lead to; ok is false when the table no longer holds all of
// them (or seq is past the head: another topic's sequence), and then the
// caller needs a snapshot.
func (t *Table) Since(seq int64, match func(string) bool) (out []Entry, head int64, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if seq < t.exactFrom || seq > t.head {
		return nil, t.head, false
	}
	i, _ := slices.BinarySearchFunc(t.history, seq+1, func(e Entry, s int64) int { return int(e.Seq - s) })
	for _, e := range t.history[i:] {
		if match(e.Key) {
			out = append(out, e)
		}
	}
	return out, t.head, true
}

// MarkReady says the table has read the topic up to where it stood at
// start; Ready is closed then.
func (t *Table) MarkReady() { t.readyOnce.Do(func() { close(t.ready) }) }

// Ready is closed once the table has caught up with the topic.
func (t *Table) Ready() <-chan struct{} { return t.ready }

// IsReady reports whether Ready is closed.
func (t *Table) IsReady() bool {
	select {
	case <-t.ready:
		return true
	default:
		return false
	}
}
