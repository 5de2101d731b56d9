package kafkasink_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// The functions' emitter (pkg/runtime/fn) against this ingress: its tests
// are here, beside the ingress, so that the functions' modules do not
// need the broker's modules to test package fn.

// gate stands in front of the engine's real KafkaSink ingress (on a
// Kafka-protocol broker) and counts what the emitter sends: it may refuse
// events of one type (400, as a sink refuses an invalid event, also inside
// a batch), refuse batches (415, as Knative's KafkaSink does), and hold the
// first request until released, so that the emits behind it queue up.
type gate struct {
	next       http.Handler
	refuseType string
	noBatches  bool
	hold       chan struct{}
	arrived    chan struct{}
	first      atomic.Bool

	singles, batches, refusedBatches atomic.Int64
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.hold != nil && g.first.CompareAndSwap(false, true) {
		close(g.arrived)
		<-g.hold
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	refuse := g.refuseType != "" && r.Header.Get("ce-type") == g.refuseType
	if fn.IsBatch(r.Header) {
		g.batches.Add(1)
		if g.noBatches {
			fn.WriteError(w, fn.WithStatus(http.StatusUnsupportedMediaType, fmt.Errorf("one event per request")))
			return
		}
		refuse = g.refuseType != "" && bytes.Contains(body, []byte(`"type":"`+g.refuseType+`"`))
		if refuse {
			g.refusedBatches.Add(1)
		}
	} else {
		g.singles.Add(1)
	}
	if refuse {
		fn.WriteError(w, fn.Invalidf("events of type %s are refused", g.refuseType))
		return
	}
	g.next.ServeHTTP(w, r)
}

// sinkBehind starts a real ingress for topic behind g and sets K_SINK to it.
func sinkBehind(t *testing.T, g *gate) []string {
	t.Helper()
	brokers := testenv.Kafka(t, 1, "emitted")
	in, err := kafkasink.New(brokers, []kafkasink.Sink{{Namespace: "ns", Name: "out", Topic: "emitted"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	g.next = in
	srv := httptest.NewServer(g)
	t.Cleanup(func() { srv.Close(); _ = in.Close() })
	t.Setenv("K_SINK", srv.URL+"/ns/out")
	return brokers
}

func emitted(t *testing.T, brokers []string, n int) []string {
	t.Helper()
	c, err := sarama.NewConsumer(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition("emitted", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var ids []string
	for len(ids) < n {
		select {
		case m := <-pc.Messages():
			for _, h := range m.Headers {
				if string(h.Key) == "ce_id" {
					ids = append(ids, string(h.Value))
				}
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d records of %d in the topic", len(ids), n)
		}
	}
	sort.Strings(ids)
	return ids
}

func newEvent(i int, typ string) event.Event {
	e := event.New()
	e.SetID(fmt.Sprintf("e%03d", i))
	e.SetSource("/t")
	e.SetType(typ)
	_ = e.SetData("application/json", map[string]int{"i": i})
	return e
}

// emitConcurrently sends events from..to-1 each from its own goroutine
// and returns each one's outcome; typeOf names each event's type.
func emitConcurrently(em *fn.Emitter, from, to int, typeOf func(int) string) (started *sync.WaitGroup, wait func() map[int]error) {
	var mu sync.Mutex
	errs := map[int]error{}
	var wg sync.WaitGroup
	started = &sync.WaitGroup{}
	for i := from; i < to; i++ {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			err := em.Send(context.Background(), fn.DefaultOutput, newEvent(i, typeOf(i)))
			mu.Lock()
			errs[i] = err
			mu.Unlock()
		}()
	}
	return started, func() map[int]error { wg.Wait(); return errs }
}

func wantIDs(from, to int, except ...int) []string {
	var ids []string
	for i := from; i < to; i++ {
		skip := false
		for _, x := range except {
			skip = skip || x == i
		}
		if !skip {
			ids = append(ids, fmt.Sprintf("e%03d", i))
		}
	}
	return ids
}

func good(int) string { return "good" }

// holdThenRelease starts emits from..to behind a first request held at
// the gate, so that they queue up and go out as one batch once released.
func holdThenRelease(t *testing.T, g *gate, em *fn.Emitter, from, to int, typeOf func(int) string) map[int]error {
	t.Helper()
	_, first := emitConcurrently(em, from, from+1, typeOf)
	select {
	case <-g.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the first emit never reached the sink")
	}
	started, rest := emitConcurrently(em, from+1, to, typeOf)
	started.Wait()
	time.Sleep(500 * time.Millisecond) // the goroutines reach the batcher's queue
	close(g.hold)
	errs := rest()
	for i, err := range first() {
		errs[i] = err
	}
	return errs
}

// TestEmitterGroupCommitsConcurrentEmits: with JOBFLOW_EMIT_BATCH (set by
// the local engine) concurrent emits to one sink share batch requests, and
// each returns once its event is in Kafka.
func TestEmitterGroupCommitsConcurrentEmits(t *testing.T) {
	g := &gate{hold: make(chan struct{}), arrived: make(chan struct{})}
	brokers := sinkBehind(t, g)
	t.Setenv("JOBFLOW_EMIT_BATCH", "true")
	t.Setenv("JOBFLOW_EMIT_BATCH_REQUESTS", "1")
	em, err := fn.NewEmitter("t")
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	for i, err := range holdThenRelease(t, g, em, 0, 300, good) {
		if err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
	}
	if ids := emitted(t, brokers, 300); fmt.Sprint(ids) != fmt.Sprint(wantIDs(0, 300)) {
		t.Fatalf("topic holds %v", ids)
	}
	if b, s := g.batches.Load(), g.singles.Load(); b == 0 || b+s >= 100 {
		t.Fatalf("%d batch and %d single requests for 300 concurrent emits: not group-committed", b, s)
	}
	t.Logf("300 emits in %d batch and %d single requests", g.batches.Load(), g.singles.Load())
}

// TestEmitterFallsBackPerEventWhenABatchIsRefused: a batch with an event
// the sink refuses is sent again event by event, so the caller of that
// event alone gets an error and every other event is written.
func TestEmitterFallsBackPerEventWhenABatchIsRefused(t *testing.T) {
	g := &gate{refuseType: "bad", hold: make(chan struct{}), arrived: make(chan struct{})}
	brokers := sinkBehind(t, g)
	t.Setenv("JOBFLOW_EMIT_BATCH", "true")
	t.Setenv("JOBFLOW_EMIT_BATCH_REQUESTS", "1")
	em, err := fn.NewEmitter("t")
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	const bad = 37
	errs := holdThenRelease(t, g, em, 0, 100, func(i int) string {
		if i == bad {
			return "bad"
		}
		return "good"
	})
	for i, err := range errs {
		if (err != nil) != (i == bad) {
			t.Errorf("emit %d: %v", i, err)
		}
	}
	if fn.StatusOf(errs[bad]) != http.StatusServiceUnavailable {
		t.Errorf("the refused emit: %v, want a 503 (the delivery around it is retried, then dead-lettered)", errs[bad])
	}
	if ids := emitted(t, brokers, 99); fmt.Sprint(ids) != fmt.Sprint(wantIDs(0, 100, bad)) {
		t.Fatalf("topic holds %v", ids)
	}
	if g.refusedBatches.Load() == 0 {
		t.Fatal("no batch was refused: the fallback was not exercised")
	}
}

// TestEmitterSendsSingleEventsToASinkThatRefusesBatches: Knative's
// KafkaSink answers a batch with 415; the emitter then sends that batch's
// events one by one, and every later event alone.
func TestEmitterSendsSingleEventsToASinkThatRefusesBatches(t *testing.T) {
	g := &gate{noBatches: true, hold: make(chan struct{}), arrived: make(chan struct{})}
	brokers := sinkBehind(t, g)
	t.Setenv("JOBFLOW_EMIT_BATCH", "true")
	t.Setenv("JOBFLOW_EMIT_BATCH_REQUESTS", "1")
	em, err := fn.NewEmitter("t")
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	for i, err := range holdThenRelease(t, g, em, 0, 50, good) {
		if err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
	}
	batches := g.batches.Load()
	if batches == 0 {
		t.Fatal("no batch was tried")
	}
	_, wait := emitConcurrently(em, 50, 100, good)
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
	}
	if ids := emitted(t, brokers, 100); fmt.Sprint(ids) != fmt.Sprint(wantIDs(0, 100)) {
		t.Fatalf("topic holds %v", ids)
	}
	if g.batches.Load() != batches {
		t.Fatalf("%d batches after the sink answered 415, want none", g.batches.Load()-batches)
	}
}

// TestEmitterWithoutBatchingSendsOneEventPerRequest: on Knative (nothing
// sets JOBFLOW_EMIT_BATCH) every emit is its own request.
func TestEmitterWithoutBatchingSendsOneEventPerRequest(t *testing.T) {
	g := &gate{}
	brokers := sinkBehind(t, g)
	t.Setenv("JOBFLOW_EMIT_BATCH", "") // restored after the test
	_ = os.Unsetenv("JOBFLOW_EMIT_BATCH")
	em, err := fn.NewEmitter("t")
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	_, wait := emitConcurrently(em, 0, 100, good)
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
	}
	emitted(t, brokers, 100)
	if g.batches.Load() != 0 || g.singles.Load() != 100 {
		t.Fatalf("%d batches and %d single requests, want 0 and 100", g.batches.Load(), g.singles.Load())
	}
}
