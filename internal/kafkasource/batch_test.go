package kafkasource_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// batchSink takes single events and CloudEvents batches and answers each
// request by a script over the values it holds.
type batchSink struct {
	mu       sync.Mutex
	requests [][]string // values per request
	batches  atomic.Int32
	answer   func(values []string, batch bool) int
	srv      *httptest.Server
}

func newBatchSink(t *testing.T, answer func(values []string, batch bool) int) *batchSink {
	s := &batchSink{answer: answer}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *batchSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var events []event.Event
	batch := fn.IsBatch(r.Header)
	if batch {
		var err error
		if events, err = fn.ReadEvents(r); err != nil {
			fn.WriteError(w, err)
			return
		}
		s.batches.Add(1)
	} else {
		e, err := fn.ReadEvent(r)
		if err != nil {
			fn.WriteError(w, err)
			return
		}
		events = []event.Event{*e}
	}
	values := make([]string, len(events))
	for i, e := range events {
		values[i] = string(e.Data())
	}
	s.mu.Lock()
	s.requests = append(s.requests, values)
	s.mu.Unlock()
	status := http.StatusAccepted
	if s.answer != nil {
		status = s.answer(values, batch)
	}
	time.Sleep(2 * time.Millisecond) // a sink takes a little while: records queue up meanwhile
	w.WriteHeader(status)
	fmt.Fprintf(w, "answer %d", status)
}

// seen counts the requests that carried each value.
func (s *batchSink) seen() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, largest := map[string]int{}, 0
	for _, r := range s.requests {
		largest = max(largest, len(r))
		for _, v := range r {
			m[v]++
		}
	}
	return m, largest
}

func batched(brokers []string, target, dls string, size int) kafkasource.Config {
	return kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", MaxInFlight: 400, BatchSize: size,
		Retrier: kafkasource.Retrier{Policy: policy(2, delivery.Linear, 10*time.Millisecond, 5*time.Second), Target: target, DeadLetter: dls}}
}

func TestBatchesDeliverEachRecordOnceAndCommit(t *testing.T) {
	brokers := testenv.Kafka(t, 3, "in")
	sink := newBatchSink(t, nil)
	values := produce(t, brokers, "in", "b", 3000, 16)
	cfg := batched(brokers, sink.srv.URL, "", 100)
	src := start(t, cfg)
	waitFor(t, "3000 deliveries", 30*time.Second, func() bool { return src.Stats().Delivered == 3000 })
	seen, largest := sink.seen()
	for _, v := range values {
		if seen[v] != 1 {
			t.Fatalf("%s delivered %d times, want once", v, seen[v])
		}
	}
	st := src.Stats()
	if st.Batches == 0 || largest < 2 || largest > 100 {
		t.Fatalf("batches %d, largest request %d events: want batches of 2..100", st.Batches, largest)
	}
	if st.BatchFallbacks != 0 || st.Failures != 0 {
		t.Fatalf("nothing was refused, yet %+v", st)
	}
	// Every offset was committed: a restarted source delivers nothing again.
	time.Sleep(300 * time.Millisecond)
	src.stop()
	produce(t, brokers, "in", "after", 1, 1)
	src2 := start(t, cfg)
	waitFor(t, "the new record", 30*time.Second, func() bool { return src2.Stats().Delivered == 1 })
	time.Sleep(300 * time.Millisecond)
	if d := src2.Stats().Delivered; d != 1 {
		t.Fatalf("%d records delivered after the restart, want only the new one", d)
	}
	t.Logf("3000 records in %d batches, largest %d", st.Batches, largest)
}

func TestARefusedBatchIsDeliveredOneByOne(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "in")
	// x-13 is invalid: a batch holding it is refused (400), as is x-13 alone.
	sink := newBatchSink(t, func(values []string, batch bool) int {
		for _, v := range values {
			if v == "x-13" {
				return http.StatusBadRequest
			}
		}
		return http.StatusAccepted
	})
	dls := newBatchSink(t, nil)
	values := produce(t, brokers, "in", "x", 400, 4)
	src := start(t, batched(brokers, sink.srv.URL, dls.srv.URL, 50))
	waitFor(t, "399 delivered, 1 dead-lettered", 30*time.Second, func() bool {
		s := src.Stats()
		return s.Delivered == 399 && s.DeadLettered == 1
	})
	dead, _ := dls.seen()
	if len(dead) != 1 || dead["x-13"] != 1 {
		t.Fatalf("dead-letter sink got %v, want x-13 once", dead)
	}
	seen, _ := sink.seen()
	for _, v := range values {
		if seen[v] == 0 {
			t.Fatalf("%s never reached the sink", v)
		}
	}
	if st := src.Stats(); st.BatchFallbacks == 0 {
		t.Fatalf("no batch fell back: %+v", st)
	}
	// x-13 was tried alone exactly once (400 is not retried).
	alone := 0
	sink.mu.Lock()
	for _, r := range sink.requests {
		if len(r) == 1 && r[0] == "x-13" {
			alone++
		}
	}
	sink.mu.Unlock()
	if alone != 1 {
		t.Fatalf("x-13 sent alone %d times, want once", alone)
	}
}

func TestASinkWithoutBatchesGetsOneEventPerRequest(t *testing.T) {
	brokers := testenv.Kafka(t, 2, "in")
	sink := newBatchSink(t, func(_ []string, batch bool) int {
		if batch {
			return http.StatusUnsupportedMediaType
		}
		return http.StatusAccepted
	})
	values := produce(t, brokers, "in", "n", 1000, 8)
	src := start(t, batched(brokers, sink.srv.URL, "", 100))
	waitFor(t, "1000 deliveries", 30*time.Second, func() bool { return src.Stats().Delivered == 1000 })
	seen, _ := sink.seen()
	for _, v := range values {
		if seen[v] == 0 {
			t.Fatalf("%s never delivered", v)
		}
	}
	// Batching stopped at the first 415 (batches already on their way may
	// still be refused: at most one per partition and flight).
	refused := sink.batches.Load()
	produce(t, brokers, "in", "later", 500, 8)
	waitFor(t, "1500 deliveries", 30*time.Second, func() bool { return src.Stats().Delivered == 1500 })
	if sink.batches.Load() != refused {
		t.Fatalf("the source kept sending batches after a 415")
	}
	if refused == 0 {
		t.Fatalf("no batch was ever sent: the test did not test anything")
	}
}

func TestBatchingNeedsUnorderedDelivery(t *testing.T) {
	_, err := kafkasource.New(kafkasource.Config{Name: "o", Brokers: []string{"x"}, Topics: []string{"t"}, Group: "g",
		Ordered: true, BatchSize: 10, Retrier: kafkasource.Retrier{Target: "http://x"}}, nil)
	if err == nil {
		t.Fatal("an ordered source with batches was accepted")
	}
}
