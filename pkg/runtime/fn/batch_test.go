package fn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// collector is a BatchHandler that emits one event per batch with the
// number of events it took.
type collector struct {
	mu      sync.Mutex
	batches [][]string
}

func (c *collector) Handle(ctx context.Context, in event.Event) ([]fn.Output, error) {
	return c.HandleBatch(ctx, []event.Event{in})
}

func (c *collector) HandleBatch(_ context.Context, in []event.Event) ([]fn.Output, error) {
	ids := make([]string, len(in))
	for i, e := range in {
		if e.Type() == "bad" {
			return nil, fn.Invalidf("event %d is bad", i)
		}
		ids[i] = e.ID()
	}
	c.mu.Lock()
	c.batches = append(c.batches, ids)
	c.mu.Unlock()
	out := event.New()
	out.SetID(strings.Join(ids, "+"))
	out.SetSource("/collector")
	out.SetType("collected")
	return fn.Emit(out), nil
}

func postBatch(t *testing.T, url string, types ...string) (int, string) {
	t.Helper()
	events := make([]event.Event, len(types))
	for i, typ := range types {
		e := event.New()
		e.SetID(string(rune('a' + i)))
		e.SetSource("/t")
		e.SetType(typ)
		_ = e.SetData("application/json", map[string]int{"i": i})
		events[i] = e
	}
	req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), url, events)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestABatchIsHandledAtOnceAndItsOutputsGoToTheSink(t *testing.T) {
	s := &sink{status: http.StatusAccepted}
	srv := httptest.NewServer(s)
	defer srv.Close()
	t.Setenv("K_SINK", srv.URL)
	c := &collector{}
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return c, nil }))
	if code, body := postBatch(t, url, "in", "in", "in"); code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", code, body)
	}
	if len(c.batches) != 1 || len(c.batches[0]) != 3 || s.count() != 1 || s.events[0].ID() != "a+b+c" {
		t.Fatalf("handler saw %v, sink got %d events", c.batches, s.count())
	}
	// One event per request still works the same.
	if resp := post(t, url, "in", []byte(`{}`)); resp.StatusCode != http.StatusAccepted || s.count() != 2 {
		t.Fatalf("single event: %d, sink %d", resp.StatusCode, s.count())
	}
}

func TestABatchWithAnInvalidEventIsRefusedWhole(t *testing.T) {
	t.Setenv("K_SINK", "")
	c := &collector{}
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return c, nil }))
	if code, body := postBatch(t, url, "in", "bad"); code != http.StatusBadRequest || !strings.Contains(body, "event 1 is bad") {
		t.Fatalf("%d %s, want 400 naming the event", code, body)
	}
	if len(c.batches) != 0 {
		t.Fatalf("part of a refused batch was handled: %v", c.batches)
	}
	// Without a sink a batch cannot be answered with its outputs.
	if code, _ := postBatch(t, url, "in"); code != http.StatusInternalServerError {
		t.Fatalf("batch with a reply and no K_SINK: %d, want 500", code)
	}
	// Not JSON, or not CloudEvents: 400 with a reason.
	for _, body := range []string{`[{"id":"1"}]`, `{`, `[{"specversion":"1.0","id":"","source":"/s","type":"t"}]`} {
		resp, err := http.Post(url, "application/cloudevents-batch+json; charset=utf-8", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Fatalf("%s: %d %s, want 400 with a reason", body, resp.StatusCode, b)
		}
	}
}

func TestAFunctionWithoutBatchesAnswers415(t *testing.T) {
	t.Setenv("K_SINK", "")
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return echo(""), nil }))
	if code, body := postBatch(t, url, "in", "in"); code != http.StatusUnsupportedMediaType {
		t.Fatalf("%d %s, want 415", code, body)
	}
}

// TestHandleEachAnswersForTheBatch: the outputs of every event in order;
// a failing event fails the batch with its status, except that a 415
// (which would tell the engine "no batches") becomes a 400, and a panic
// in an event's goroutine is a 500, not the end of the process.
func TestHandleEachAnswersForTheBatch(t *testing.T) {
	h := fn.HandlerFunc(func(_ context.Context, in event.Event) ([]fn.Output, error) {
		switch in.Type() {
		case "unsupported":
			return nil, fn.WithStatus(http.StatusUnsupportedMediaType, errors.New("no"))
		case "down":
			return nil, fn.Unavailable(errors.New("db down"))
		case "boom":
			panic("boom")
		}
		return fn.Emit(in), nil
	})
	events := func(types ...string) []event.Event {
		var es []event.Event
		for i, typ := range types {
			e := event.New()
			e.SetID(fmt.Sprint(i))
			e.SetSource("/t")
			e.SetType(typ)
			es = append(es, e)
		}
		return es
	}
	outs, err := fn.HandleEach(context.Background(), h, events("a", "b", "c"))
	if err != nil || len(outs) != 3 || outs[0].Event.ID() != "0" || outs[2].Event.ID() != "2" {
		t.Fatalf("outputs %v, %v", outs, err)
	}
	for typ, want := range map[string]int{"unsupported": 400, "down": 503, "boom": 500} {
		outs, err := fn.HandleEach(context.Background(), h, events("a", typ, "c"))
		if fn.StatusOf(err) != want || outs != nil || !strings.Contains(err.Error(), "event 1 (id 1)") {
			t.Errorf("%s: %v (%d), %d outputs; want %d naming event 1, no outputs", typ, err, fn.StatusOf(err), len(outs), want)
		}
	}
}
