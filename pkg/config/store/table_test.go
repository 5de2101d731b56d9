package store

import (
	"encoding/json"
	"testing"

	"github.com/jobflow/jobflow/pkg/config/change"
)

func all(string) bool { return true }

func ch(key, value, rev string) *change.Change {
	return &change.Change{Key: key, Value: json.RawMessage(value), Revision: rev}
}

func seqs(es []Entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestSinceGivesExactlyTheChangesAfterAPosition(t *testing.T) {
	tb := NewTable(10)
	tb.Apply(1, ch("a", "1", "r1"))
	tb.Apply(2, ch("b", "2", "r1"))
	tb.Apply(3, nil) // not a change: keeps its place
	tb.Apply(4, ch("a", "3", "r2"))
	got, head, ok := tb.Since(1, all)
	if !ok || head != 4 || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 4 {
		t.Fatalf("Since(1) = %v head %d ok %v", seqs(got), head, ok)
	}
	onlyA, _, _ := tb.Since(0, func(k string) bool { return k == "a" })
	if len(onlyA) != 2 || onlyA[1].Value == nil || string(onlyA[1].Value) != "3" {
		t.Fatalf("Since(0, a) = %+v", onlyA)
	}
	if _, _, ok := tb.Since(5, all); ok {
		t.Fatal("a position past the head must not resume (another topic's)")
	}
	snap, head := tb.Snapshot(all)
	if head != 4 || len(snap) != 2 || snap[0].Key != "a" || string(snap[0].Value) != "3" {
		t.Fatalf("snapshot %+v at %d", snap, head)
	}
}

func TestRetentionAndGapsRefuseAResumeInsteadOfSkipping(t *testing.T) {
	tb := NewTable(2)
	for i := int64(1); i <= 5; i++ {
		tb.Apply(i, ch("k", string(rune('0'+i)), "r"+string(rune('0'+i))))
	}
	if _, _, ok := tb.Since(2, all); ok {
		t.Fatal("changes 3..5 with only 2 retained: a resume from 2 would skip 3")
	}
	if got, _, ok := tb.Since(3, all); !ok || len(got) != 2 {
		t.Fatalf("resume from 3: %v %v", seqs(got), ok)
	}
	tb.Apply(9, ch("k", "9", "r9")) // 6..8 compacted away
	if _, _, ok := tb.Since(5, all); ok {
		t.Fatal("records 6..8 are unknown: a resume from 5 must be refused")
	}
	if got, _, ok := tb.Since(8, all); !ok || len(got) != 1 {
		t.Fatalf("resume from 8: %v %v", seqs(got), ok)
	}
}

func TestARepeatedChangeIsNotSeenTwiceAndDeletionsRemove(t *testing.T) {
	tb := NewTable(10)
	if !tb.Apply(1, ch("k", "1", "r1")) {
		t.Fatal("first change not visible")
	}
	if tb.Apply(2, ch("k", "1", "r1")) {
		t.Fatal("the same change sent twice was visible again")
	}
	if tb.Apply(2, ch("k", "2", "r2")) {
		t.Fatal("a record at a position already applied was applied")
	}
	if !tb.Apply(3, &change.Change{Key: "k", Deleted: true, Revision: "r3", PreviousRevision: "r1"}) {
		t.Fatal("deletion not visible")
	}
	if _, ok := tb.Get("k"); ok {
		t.Fatal("deleted key still there")
	}
	got, _, _ := tb.Since(1, all)
	if len(got) != 1 || !got[0].Deleted {
		t.Fatalf("since 1: %+v", got)
	}
}

func TestChangedIsClosedByTheNextApply(t *testing.T) {
	tb := NewTable(1)
	c := tb.Changed()
	tb.Apply(1, ch("k", "1", "r"))
	select {
	case <-c:
	default:
		t.Fatal("Changed not closed")
	}
}
