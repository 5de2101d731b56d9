package change

import (
	"encoding/json"
	"testing"
)

func TestEventRoundTripAndTombstone(t *testing.T) {
	c := Change{Key: "jobs/x", Value: json.RawMessage(`{"a":1}`), Revision: "r2", PreviousRevision: "r1"}
	e, err := c.Event("/s")
	if err != nil || e.Subject() != "jobs/x" || e.Extensions()["partitionkey"] != "jobs/x" || e.ID() != c.ID() {
		t.Fatalf("event %v (%v)", e, err)
	}
	back, err := FromEvent(e)
	if err != nil || back.Key != c.Key || string(back.Value) != `{"a":1}` || back.PreviousRevision != "r1" {
		t.Fatalf("back %+v (%v)", back, err)
	}
	d := Change{Key: "jobs/x", Deleted: true, Revision: "r3", PreviousRevision: "r2"}
	de, _ := d.Event("/s")
	if len(de.Data()) != 0 {
		t.Fatal("a deletion must carry no data (a Kafka tombstone)")
	}
	if back, err := FromEvent(de); err != nil || !back.Deleted || back.Revision != "r3" || back.PreviousRevision != "r2" {
		t.Fatalf("tombstone back %+v (%v)", back, err)
	}
	if d.ID() == (Change{Key: "jobs/x", Revision: "r3"}).ID() {
		t.Fatal("a deletion and a value at the same revision need different ids")
	}
	for _, k := range []string{"", "a,b", "a*", "a\nb"} {
		if CheckKey(k) == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if _, err := (Change{Key: "k", Value: json.RawMessage(`{`), Revision: "r"}).Event("/s"); err == nil {
		t.Error("invalid JSON value accepted")
	}
}
