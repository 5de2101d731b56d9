package kafkasource_test

// A conformance suite for the local KafkaSource, in the style of
// watermill's pub/sub tests: a real Kafka-protocol broker (kfake), real
// consumer groups, and a scriptable HTTP sink that records every attempt.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// attempt is one request the sink saw.
type attempt struct {
	Key       string
	Partition string
	At        time.Time
	Event     event.Event
}

// scriptSink answers each attempt by a script keyed by record value.
type scriptSink struct {
	mu       sync.Mutex
	attempts []attempt
	inflight atomic.Int32
	peak     atomic.Int32
	// answer returns the status and how long to take for the n-th (0-based) attempt of a value.
	answer func(value string, n int) (status int, delay time.Duration)
	srv    *httptest.Server
}

func newSink(t *testing.T, answer func(value string, n int) (int, time.Duration)) *scriptSink {
	s := &scriptSink{answer: answer}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scriptSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := fn.ReadEvent(r)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	cur := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		p := s.peak.Load()
		if cur <= p || s.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	value := string(e.Data())
	s.mu.Lock()
	n := 0
	for _, a := range s.attempts {
		if string(a.Event.Data()) == value {
			n++
		}
	}
	s.attempts = append(s.attempts, attempt{Key: fmt.Sprint(e.Extensions()["key"]), Partition: e.Subject(), At: time.Now(), Event: *e})
	s.mu.Unlock()
	status, delay := 200, time.Duration(0)
	if s.answer != nil {
		status, delay = s.answer(value, n)
	}
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answer %d", status)
}

func (s *scriptSink) all() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.attempts...)
}

func (s *scriptSink) of(value string) []attempt {
	var out []attempt
	for _, a := range s.all() {
		if string(a.Event.Data()) == value {
			out = append(out, a)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// produce writes records value=<prefix>-<i> with key k<i%keys> and returns the values.
func produce(t *testing.T, brokers []string, topic, prefix string, n, keys int) []string {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	var values []string
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		values = append(values, v)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(i%keys)), Value: sarama.StringEncoder(v)})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	return values
}

type source struct {
	*kafkasource.Source
	stop func()
}

func start(t *testing.T, cfg kafkasource.Config) *source {
	t.Helper()
	cfg.Name, cfg.Namespace, cfg.InitialOffset = "conformance", "test", "earliest"
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	s, err := kafkasource.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	src := &source{Source: s}
	var once sync.Once
	src.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(src.stop)
	select {
	case <-s.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("source got no partitions")
	}
	return src
}

func policy(retry int, backoff string, delay, timeout time.Duration) delivery.Policy {
	return delivery.Policy{Retry: retry, Backoff: backoff, Delay: delay, Timeout: timeout}
}

func TestOrderedDeliversEachRecordOnceInPartitionOrder(t *testing.T) {
	brokers := testenv.Kafka(t, 3, "in")
	sink := newSink(t, func(string, int) (int, time.Duration) { return 202, time.Millisecond })
	values := produce(t, brokers, "in", "r", 300, 7)
	src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: true,
		Retrier: kafkasource.Retrier{Policy: policy(3, delivery.Linear, 10*time.Millisecond, 5*time.Second), Target: sink.srv.URL}})
	waitFor(t, "300 deliveries", 30*time.Second, func() bool { return src.Stats().Delivered == 300 })

	seen := map[string]int{}
	lastByKey := map[string]int{}
	for _, a := range sink.all() {
		v := string(a.Event.Data())
		seen[v]++
		i, _ := strconv.Atoi(v[2:])
		if prev, ok := lastByKey[a.Key]; ok && i < prev {
			t.Fatalf("key %s: %s delivered after r-%d: order broken", a.Key, v, prev)
		}
		lastByKey[a.Key] = i
		if a.Event.Type() != kafkasource.KafkaEventType {
			t.Fatalf("type %s", a.Event.Type())
		}
	}
	for _, v := range values {
		if seen[v] != 1 {
			t.Fatalf("%s delivered %d times", v, seen[v])
		}
	}
	if p := sink.peak.Load(); p > 3 {
		t.Fatalf("ordered delivery had %d in flight on 3 partitions: want at most one per partition", p)
	}
}

func TestUnorderedIsParallelUpToTheCap(t *testing.T) {
	brokers := testenv.Kafka(t, 2, "in")
	sink := newSink(t, func(string, int) (int, time.Duration) { return 200, 30 * time.Millisecond })
	produce(t, brokers, "in", "u", 200, 10)
	src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: false, MaxInFlight: 8,
		Retrier: kafkasource.Retrier{Policy: policy(3, delivery.Linear, 10*time.Millisecond, 5*time.Second), Target: sink.srv.URL}})
	waitFor(t, "200 deliveries", 30*time.Second, func() bool { return src.Stats().Delivered == 200 })
	if p := sink.peak.Load(); p > 8 || p < 4 {
		t.Fatalf("peak in flight %d: want parallel delivery capped at 8", p)
	}
	if n := len(sink.all()); n != 200 {
		t.Fatalf("%d attempts for 200 records", n)
	}
}

func TestRetriesWithBackoffThenSucceeds(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "in")
	// x-0 fails twice (503, then 429), then succeeds; the others succeed at once.
	sink := newSink(t, func(v string, n int) (int, time.Duration) {
		if v == "x-0" && n < 2 {
			return []int{503, 429}[n], 0
		}
		return 200, 0
	})
	produce(t, brokers, "in", "x", 3, 1)
	src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: true,
		Retrier: kafkasource.Retrier{Policy: policy(5, delivery.Exponential, 100*time.Millisecond, 5*time.Second), Target: sink.srv.URL}})
	waitFor(t, "3 deliveries", 30*time.Second, func() bool { return src.Stats().Delivered == 3 })
	as := sink.of("x-0")
	if len(as) != 3 {
		t.Fatalf("x-0: %d attempts, want 3", len(as))
	}
	// Kafka data plane: retry n waits delay*2^n: 200 ms, then 400 ms.
	for i, want := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond} {
		got := as[i+1].At.Sub(as[i].At)
		if got < want || got > want+300*time.Millisecond {
			t.Errorf("wait before retry %d: %s, want %s (+300 ms tolerance)", i+1, got, want)
		}
	}
	// Ordered: x-1 waited for x-0.
	if x1 := sink.of("x-1"); len(x1) != 1 || x1[0].At.Before(as[2].At) {
		t.Fatal("x-1 must be delivered once, after x-0 succeeded")
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "in")
	sink := newSink(t, func(v string, n int) (int, time.Duration) {
		if n == 0 {
			return 200, 2 * time.Second
		}
		return 200, 0
	})
	produce(t, brokers, "in", "t", 1, 1)
	src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: true,
		Retrier: kafkasource.Retrier{Policy: policy(3, delivery.Linear, 50*time.Millisecond, 300*time.Millisecond), Target: sink.srv.URL}})
	waitFor(t, "delivery", 30*time.Second, func() bool { return src.Stats().Delivered == 1 })
	if n := len(sink.of("t-0")); n != 2 {
		t.Fatalf("%d attempts, want 2 (the first timed out after 300 ms)", n)
	}
}

func TestExhaustedRetriesGoToTheDeadLetterSinkWithKnativeExtensions(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "in")
	sink := newSink(t, func(v string, n int) (int, time.Duration) {
		if v == "d-1" {
			return 500, 0
		}
		return 200, 0
	})
	dls := newSink(t, nil)
	produce(t, brokers, "in", "d", 3, 1)
	cfg := kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: true,
		Retrier: kafkasource.Retrier{Policy: policy(2, delivery.Linear, 20*time.Millisecond, 5*time.Second), Target: sink.srv.URL, DeadLetter: dls.srv.URL}}
	src := start(t, cfg)
	waitFor(t, "2 delivered, 1 dead-lettered", 30*time.Second, func() bool {
		s := src.Stats()
		return s.Delivered == 2 && s.DeadLettered == 1
	})
	if n := len(sink.of("d-1")); n != 3 {
		t.Fatalf("d-1: %d attempts, want 1 + 2 retries", n)
	}
	got := dls.all()
	if len(got) != 1 || string(got[0].Event.Data()) != "d-1" {
		t.Fatalf("dead-letter sink got %d events", len(got))
	}
	ext := got[0].Event.Extensions()
	data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(ext["knativeerrordata"]))
	if fmt.Sprint(ext["knativeerrorcode"]) != "500" || fmt.Sprint(ext["knativeerrordest"]) != sink.srv.URL || string(data) != "answer 500" {
		t.Fatalf("extensions: %v", ext)
	}
	// The dead-lettered record's offset was committed: a new member of the
	// group starts after it.
	src.stop()
	produce(t, brokers, "in", "after", 1, 1)
	src2 := start(t, cfg)
	waitFor(t, "the new record", 30*time.Second, func() bool { return src2.Stats().Delivered == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := len(sink.of("d-1")); n != 3 || src2.Stats().DeadLettered != 0 {
		t.Fatalf("d-1 redelivered after its dead letter was committed (%d attempts)", n)
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "in")
	sink := newSink(t, func(string, int) (int, time.Duration) { return 400, 0 })
	dls := newSink(t, nil)
	produce(t, brokers, "in", "p", 1, 1)
	src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: true,
		Retrier: kafkasource.Retrier{Policy: policy(5, delivery.Linear, 20*time.Millisecond, 5*time.Second), Target: sink.srv.URL, DeadLetter: dls.srv.URL}})
	waitFor(t, "dead letter", 30*time.Second, func() bool { return src.Stats().DeadLettered == 1 })
	if n := len(sink.all()); n != 1 {
		t.Fatalf("a 400 was attempted %d times, want once", n)
	}
	if code := fmt.Sprint(dls.all()[0].Event.Extensions()["knativeerrorcode"]); code != "400" {
		t.Fatalf("knativeerrorcode %s", code)
	}
}

func TestWithoutDeadLetterSinkThePartitionWaitsInsteadOfSkipping(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "in")
	var healthy atomic.Bool
	sink := newSink(t, func(v string, n int) (int, time.Duration) {
		if v == "s-0" && !healthy.Load() {
			return 503, 0
		}
		return 200, 0
	})
	produce(t, brokers, "in", "s", 3, 1)
	src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: true,
		Retrier: kafkasource.Retrier{Policy: policy(1, delivery.Linear, 20*time.Millisecond, 5*time.Second), Target: sink.srv.URL,
			MaxStallWait: 50 * time.Millisecond}})
	waitFor(t, "retries beyond the retry count", 30*time.Second, func() bool { return len(sink.of("s-0")) >= 5 })
	if s := src.Stats(); s.Delivered != 0 || s.Dropped != 0 || len(sink.of("s-1")) != 0 {
		t.Fatalf("the partition moved past an undelivered record: %+v", s)
	}
	healthy.Store(true)
	waitFor(t, "all 3 once the sink recovers", 30*time.Second, func() bool { return src.Stats().Delivered == 3 })
}

func TestUndeliveredRecordsAreRedeliveredAfterARestart(t *testing.T) {
	brokers := testenv.Kafka(t, 2, "in")
	var hang atomic.Bool
	hang.Store(true)
	sink := newSink(t, func(v string, n int) (int, time.Duration) {
		if v == "c-7" && hang.Load() {
			return 200, time.Hour // the "function" never answers: it crashes
		}
		return 200, 0
	})
	values := produce(t, brokers, "in", "c", 20, 4)
	cfg := kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: false, MaxInFlight: 4,
		Retrier: kafkasource.Retrier{Policy: policy(3, delivery.Linear, 20*time.Millisecond, 10*time.Minute), Target: sink.srv.URL}}
	src := start(t, cfg)
	waitFor(t, "19 deliveries", 30*time.Second, func() bool { return src.Stats().Delivered == 19 })
	time.Sleep(300 * time.Millisecond) // let commits happen
	src.stop()                         // the engine dies with c-7 in flight
	hang.Store(false)
	src2 := start(t, cfg)
	waitFor(t, "c-7 redelivered", 30*time.Second, func() bool { return len(sink.of("c-7")) == 2 })
	time.Sleep(500 * time.Millisecond)
	for _, v := range values {
		if len(sink.of(v)) == 0 {
			t.Fatalf("%s never delivered", v)
		}
	}
	// Records finished and committed before the crash are not delivered
	// again, except those after c-7 on its partition (not committable past it).
	redelivered := int(src2.Stats().Delivered)
	if redelivered < 1 || redelivered > 10 {
		t.Fatalf("%d records delivered after the restart: want c-7 and at most its partition's later records", redelivered)
	}
}

func TestADeadLetterSinkThatRefusesIsRetriedNotSkipped(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "in")
	sink := newSink(t, func(string, int) (int, time.Duration) { return 400, 0 })
	var accept atomic.Bool
	dls := newSink(t, func(string, int) (int, time.Duration) {
		if accept.Load() {
			return 202, 0
		}
		return 400, 0
	})
	produce(t, brokers, "in", "r", 2, 1)
	src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: true,
		Retrier: kafkasource.Retrier{Policy: policy(1, delivery.Linear, 10*time.Millisecond, 5*time.Second), Target: sink.srv.URL,
			DeadLetter: dls.srv.URL, MaxStallWait: 20 * time.Millisecond}})
	waitFor(t, "dead-letter attempts", 30*time.Second, func() bool { return len(dls.all()) >= 3 })
	if s := src.Stats(); s.DeadLettered != 0 || len(sink.of("r-1")) != 0 {
		t.Fatalf("moved on although the dead-letter sink refused: %+v", s)
	}
	accept.Store(true)
	waitFor(t, "both dead-lettered", 30*time.Second, func() bool { return src.Stats().DeadLettered == 2 })
}
