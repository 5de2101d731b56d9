package sink

import (
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// decodeAll gathers every event's values into one slice, and refuses the
// batch at the first bad event, naming it.
func TestDecodeAllGathersOrRefusesWhole(t *testing.T) {
	mk := func(id, data string) event.Event {
		e := event.New()
		e.SetID(id)
		_ = e.SetData("text/plain", []byte(data))
		return e
	}
	split := func(dst []string, e event.Event) ([]string, error) {
		if len(e.Data()) == 0 {
			return dst, fn.Invalidf("no data")
		}
		return append(dst, strings.Split(string(e.Data()), ",")...), nil
	}
	got, err := decodeAll([]event.Event{mk("a", "1,2"), mk("b", "3")}, split)
	if err != nil || strings.Join(got, " ") != "1 2 3" {
		t.Fatalf("got %v, %v; want [1 2 3]", got, err)
	}
	got, err = decodeAll([]event.Event{mk("a", "1,2"), mk("b", "")}, split)
	if err == nil || got != nil || !strings.Contains(err.Error(), "event 1 (id b)") {
		t.Fatalf("got %v, %v; want no values and an error naming event 1 (id b)", got, err)
	}
}
