package livebatch

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/config/change"
	"github.com/jobflow/jobflow/pkg/config/store"
	"github.com/jobflow/jobflow/pkg/config/subscribe"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/sink"
)

var _ sink.Tuner = (*Tuner)(nil)

// memStore records each write.
type memStore struct {
	mu     sync.Mutex
	writes [][]string
}

func (m *memStore) Write(_ context.Context, items []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes = append(m.writes, slices.Clone(items))
	return nil
}

func (m *memStore) Close() error { return nil }

func (m *memStore) all() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.writes)
}

// spy keeps what the tuner handed the sink, to see when a value arrived.
type spy struct {
	*Tuner
	tune func() batch.Tuning
}

func (s *spy) Start(env batch.Config) (func() batch.Tuning, error) {
	f, err := s.Tuner.Start(env)
	s.tune = f
	return f, err
}

func word(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/t")
	e.SetType("t")
	_ = e.SetData("text/plain", []byte(id))
	return e
}

// A running sink's batch size and linger follow the configuration service:
// the environment's values first, the service's after, a refused value
// keeps the previous one, and a deleted key brings the environment's back.
func TestBatchSizeAndLingerChangeLive(t *testing.T) {
	table := store.NewTable(100)
	table.MarkReady()
	srv := httptest.NewServer(subscribe.NewService(subscribe.Config{Heartbeat: time.Hour, WriteTimeout: 5 * time.Second}, table))
	t.Cleanup(srv.Close) // after the sink's Stop, which ends the subscription
	t.Setenv("JOBFLOW_CONFIG_URL", srv.URL)
	t.Setenv("JOBFLOW_CONFIG_CACHE", "")
	t.Setenv("WORDS_BATCH_MAX_ITEMS", "50")
	st, tuner := &memStore{}, &spy{Tuner: New("words", "jobs/words")}
	s := sink.New("words", batch.Config{MaxItems: 100, Flushers: 1, Timeout: 5 * time.Second},
		func(context.Context) (sink.Store[string], error) { return st, nil },
		func(dst []string, in event.Event) ([]string, error) { return append(dst, string(in.Data())), nil }).WithTuner(tuner)
	ctx := context.Background()
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(ctx) })
	if got := tuner.tune(); got != (batch.Tuning{MaxItems: 50, Linger: 0}) {
		t.Fatalf("before any value: %+v, want the environment's 50 and 0s", got)
	}
	seq := int64(0)
	set := func(key, v string) {
		seq++
		c := &change.Change{Key: "jobs/words/" + key, Value: json.RawMessage(v), Revision: "r" + v}
		if v == "" {
			c.Value, c.Deleted = nil, true
		}
		table.Apply(seq, c)
	}
	set(MaxItemsKey, `3`)
	set(LingerKey, `"30s"`)
	want := batch.Tuning{MaxItems: 3, Linger: 30 * time.Second}
	waitUntil(t, func() bool { return tuner.tune() == want }, "max-items 3 and linger 30s")

	// Two deliveries wait out the linger; a third fills the batch of 3.
	done := make(chan error, 3)
	handle := func(id string) { _, err := s.Handle(ctx, word(id)); done <- err }
	go handle("a")
	go handle("b")
	select {
	case err := <-done:
		t.Fatalf("a delivery returned within a second of a 30 s linger (err %v)", err)
	case <-time.After(time.Second):
	}
	go handle("c")
	for range 3 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a full batch of 3 was not written")
		}
	}
	if w := st.all(); len(w) != 1 || len(w[0]) != 3 {
		t.Fatalf("writes %v, want one of 3 words", w)
	}

	set(MaxItemsKey, `0`) // each refused by the check: the previous values stay
	set(LingerKey, `"-1s"`)
	set(LingerKey, `"2m"`)
	set(MaxItemsKey, `"many"`)
	time.Sleep(300 * time.Millisecond)
	if got := tuner.tune(); got != want {
		t.Fatalf("after refused values: %+v, want %+v", got, want)
	}
	set(LingerKey, ``) // deleted: the environment's 0s, a lone delivery goes at once
	waitUntil(t, func() bool { return tuner.tune().Linger == 0 }, "linger back to the environment's")
	if _, err := s.Handle(ctx, word("d")); err != nil {
		t.Fatal(err)
	}
	if w := st.all(); len(w) != 2 || strings.Join(w[1], "") != "d" {
		t.Fatalf("writes %v, want d alone", w)
	}
}

// Without a configuration service the environment's values stay.
func TestWithoutAServiceTheEnvironmentsValuesStay(t *testing.T) {
	t.Setenv("JOBFLOW_CONFIG_URL", "")
	tu := New("words", "jobs/words")
	tune, err := tu.Start(batch.Config{MaxItems: 7, Linger: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tu.Stop()
	if got := tune(); got != (batch.Tuning{MaxItems: 7, Linger: 5 * time.Millisecond}) {
		t.Fatalf("%+v", got)
	}
}

func waitUntil(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
