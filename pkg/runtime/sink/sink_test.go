package sink

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/runtime/batch"
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

// memStore records each write.
type memStore struct {
	mu     sync.Mutex
	writes [][]string
	closed bool
}

func (m *memStore) Write(_ context.Context, items []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes = append(m.writes, append([]string(nil), items...))
	return nil
}

func (m *memStore) Close() error { m.closed = true; return nil }

// words decodes an event's text data into its comma-separated words;
// "bad" data is invalid.
func words(dst []string, in event.Event) ([]string, error) {
	if string(in.Data()) == "bad" {
		return dst, fn.Invalidf("bad data")
	}
	if len(in.Data()) == 0 {
		return dst, nil
	}
	return append(dst, strings.Split(string(in.Data()), ",")...), nil
}

func textEvent(id, data string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/t")
	e.SetType("t")
	_ = e.SetData("text/plain", []byte(data))
	return e
}

// A sink answers 503 until started, writes a batch's items in one write,
// refuses a batch with a bad event before writing anything, reads its
// batch settings from <NAME>_BATCH_*, and closes its store when stopped.
func TestSinkWritesBatchesWhole(t *testing.T) {
	t.Setenv("WORDS_BATCH_MAX_ITEMS", "7")
	store := &memStore{}
	s := New("words", batch.Config{MaxItems: 100, Flushers: 1, Timeout: time.Second},
		func(context.Context) (Store[string], error) { return store, nil }, words)
	ctx := context.Background()
	if _, err := s.Handle(ctx, textEvent("a", "x")); fn.StatusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("before Start: %v, want 503", err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandleBatch(ctx, []event.Event{textEvent("a", "1,2"), textEvent("b", "3"), textEvent("c", "")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.HandleBatch(ctx, []event.Event{textEvent("a", "4"), textEvent("b", "bad")})
	if fn.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "event 1 (id b)") {
		t.Fatalf("batch with a bad event: %v, want 400 naming event 1 (id b)", err)
	}
	if _, err := s.Handle(ctx, textEvent("d", "")); err != nil {
		t.Fatalf("an event without items: %v", err)
	}
	if s.cfg.MaxItems != 7 || s.cfg.Flushers != 1 {
		t.Fatalf("batch config %+v, want WORDS_BATCH_MAX_ITEMS=7 over the defaults", s.cfg)
	}
	if err := s.Stop(ctx); err != nil || !store.closed {
		t.Fatalf("stop: %v, store closed %v", err, store.closed)
	}
	if len(store.writes) != 1 || strings.Join(store.writes[0], " ") != "1 2 3" {
		t.Fatalf("writes %v, want one write of [1 2 3]", store.writes)
	}
}
