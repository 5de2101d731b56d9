package trigger_test

// The conformance suite's world: a real Kafka-protocol broker (kfake) whose
// topic is a Broker's, Trigger dispatchers (kafkasource with a Trigger) in
// their own consumer groups, and scriptable HTTP subscribers that record
// every request.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/trigger"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// topic is the Broker's topic in every test.
const topic = "knative-broker-test-default"

// request is one request a subscriber saw.
type request struct {
	Event  event.Event
	Header http.Header
	At     time.Time
}

// answer is how a subscriber answers one request.
type answer struct {
	status int
	header map[string]string
	body   string
	delay  time.Duration
}

// subscriber answers each request by a script given the event and how many
// times (0-based) its id was seen before.
type subscriber struct {
	mu       sync.Mutex
	reqs     []request
	byKey    map[string]int // requests in flight per partitionkey
	overlap  atomic.Bool    // two requests of one key were in flight at once
	inflight atomic.Int32
	peak     atomic.Int32
	script   func(e *event.Event, n int) answer
	srv      *httptest.Server
}

func newSubscriber(t *testing.T, script func(e *event.Event, n int) answer) *subscriber {
	s := &subscriber{script: script, byKey: map[string]int{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := fn.ReadEvent(r)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	key := fmt.Sprint(e.Extensions()["partitionkey"])
	cur := s.inflight.Add(1)
	for p := s.peak.Load(); cur > p && !s.peak.CompareAndSwap(p, cur); p = s.peak.Load() {
	}
	s.mu.Lock()
	n := 0
	for _, q := range s.reqs {
		if q.Event.ID() == e.ID() {
			n++
		}
	}
	s.reqs = append(s.reqs, request{Event: *e, Header: r.Header.Clone(), At: time.Now()})
	if s.byKey[key]++; s.byKey[key] > 1 {
		s.overlap.Store(true)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.byKey[key]--
		s.mu.Unlock()
		s.inflight.Add(-1)
	}()
	a := answer{status: http.StatusAccepted}
	if s.script != nil {
		a = s.script(e, n)
	}
	select {
	case <-time.After(a.delay):
	case <-r.Context().Done():
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (s *subscriber) all() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// ids are the ids of the requests, in arrival order.
func (s *subscriber) ids() []string {
	var ids []string
	for _, r := range s.all() {
		ids = append(ids, r.Event.ID())
	}
	return ids
}

func (s *subscriber) of(id string) []request {
	var out []request
	for _, r := range s.all() {
		if r.Event.ID() == id {
			out = append(out, r)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newEvent is an event of the given id and type, keyed by key ("" none).
func newEvent(id, typ, key string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("/conformance")
	if key != "" {
		e.SetExtension("partitionkey", key)
	}
	_ = e.SetData("application/json", map[string]string{"id": id})
	return e
}

// producer is a sync producer on brokers (closed with the test).
func producer(t *testing.T, brokers []string) sarama.SyncProducer {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// publish puts events into the broker's topic as the ingress does (binary
// mode, keyed by partitionkey): through the Replier, which writes so.
func publish(t *testing.T, brokers []string, events ...event.Event) {
	t.Helper()
	r := trigger.NewReplier(producer(t, brokers), topic)
	for i := range events {
		if err := r.Reply(context.Background(), &events[i]); err != nil {
			t.Fatal(err)
		}
	}
}

// records are the records of the topic, partition by partition.
func records(t *testing.T, brokers []string) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, _ := c.Partitions(topic)
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hw, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || hw == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out = append(out, m)
			if m.Offset+1 >= hw {
				break
			}
		}
		pc.Close()
	}
	return out
}

// triggerCfg is a Trigger's dispatcher configuration.
type triggerCfg struct {
	group   string
	attrs   map[string]string
	filters []eventingv1.SubscriptionsAPIFilter
	target  string
	dls     string
	replies kafkasource.Replier // nil: the broker's topic
	policy  delivery.Policy
	ordered bool
	byKey   bool
	max     int
}

type running struct {
	*kafkasource.Source
	stop func()
}

// startTriggers starts the dispatchers and waits until each has its
// partitions.
func startTriggers(t *testing.T, brokers []string, cfgs ...triggerCfg) []*running {
	t.Helper()
	var out []*running
	for _, c := range cfgs {
		out = append(out, startTrigger(t, brokers, c))
	}
	for _, r := range out {
		select {
		case <-r.Ready():
		case <-time.After(30 * time.Second):
			t.Fatal("trigger got no partitions")
		}
	}
	return out
}

func startTrigger(t *testing.T, brokers []string, c triggerCfg) *running {
	t.Helper()
	if c.policy.Timeout == 0 {
		c.policy = delivery.Policy{Retry: 2, Backoff: delivery.Linear, Delay: 20 * time.Millisecond, Timeout: 10 * time.Second}
	}
	if c.replies == nil {
		c.replies = trigger.NewReplier(producer(t, brokers), topic)
	}
	f := trigger.NewFilter(c.attrs, c.filters)
	s, err := kafkasource.New(kafkasource.Config{Name: c.group, Namespace: "test", Brokers: brokers, Topics: []string{topic},
		Group: c.group, InitialOffset: "earliest", Ordered: c.ordered, ByKey: c.byKey, MaxInFlight: c.max,
		CommitInterval: 100 * time.Millisecond,
		Retrier:        kafkasource.Retrier{Policy: c.policy, Target: c.target, DeadLetter: c.dls, MaxStallWait: 50 * time.Millisecond},
		Trigger:        &kafkasource.Trigger{Filter: f, Replies: c.replies}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	var once sync.Once
	r := &running{Source: s, stop: func() { once.Do(func() { cancel(); <-done; f.Close() }) }}
	t.Cleanup(r.stop)
	return r
}
