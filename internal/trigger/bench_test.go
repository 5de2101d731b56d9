package trigger_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/internal/trigger"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// triggersPerBroker is the number of triggers of the benchmark's broker,
// each matching one type of as many.
const triggersPerBroker = 10

// sinkTopic is the KafkaSink's topic of the KafkaSource path.
const sinkTopic = "bench-sink"

// fetchTopic is the topic of a second broker, for the broker path with
// larger fetches (BENCH_FETCH_MIN_BYTES).
const fetchTopic = "knative-broker-bench-fetch"

// eventOnlyTopic is the topic of a third broker, for the broker path
// without the header screen (BENCH_NO_HEADER_SCREEN).
const eventOnlyTopic = "knative-broker-bench-event-only"

// BenchmarkBrokerVersusSource measures issue #17's broker path against the
// KafkaSource path, both from their ingress to their subscriber: b.N 1 KB
// CloudEvents (binary mode, types t0..t9 in turn, 64 partition keys) are
// POSTed by 16 concurrent clients (closed loop) to (a) the Broker ingress,
// whose topic of 4 partitions 10 Triggers read, each filtering on one type
// (so each reads every record and delivers a tenth), and (b) a KafkaSink
// ingress, whose topic one KafkaSource delivers, both to an HTTP receiver
// that answers 202 at once. Capacity is events/s accepted at the ingress
// and delivered to all subscribers (consumer groups joined beforehand);
// the ratio's goal is ≥ 80 %. Then each path takes events open loop at
// half its capacity for about 5 s, and the p99 of ingress → subscriber
// (from the time a POST was due to the time the receiver got the event)
// is reported (goal ≤ 50 ms):
//
//	go test -run '^$' -bench BenchmarkBrokerVersusSource -benchtime 20000x ./internal/trigger
func BenchmarkBrokerVersusSource(b *testing.B) {
	brokers := testenv.Kafka(b, 4, topic, sinkTopic, fetchTopic, eventOnlyTopic)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rx := &receiver{sent: map[string]time.Time{}}
	srv := httptest.NewServer(rx)
	defer srv.Close()
	brokerIngress, err := kafkasink.NewBrokers(brokers, []kafkasink.Sink{{Namespace: "bench", Name: "default", Topic: topic},
		{Namespace: "bench", Name: "fetch", Topic: fetchTopic}, {Namespace: "bench", Name: "event-only", Topic: eventOnlyTopic}}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer brokerIngress.Close()
	sinkIngress, err := kafkasink.New(brokers, []kafkasink.Sink{{Namespace: "bench", Name: "sink", Topic: sinkTopic}}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer sinkIngress.Close()
	brokerSrv, sinkSrv := httptest.NewServer(brokerIngress), httptest.NewServer(sinkIngress)
	defer brokerSrv.Close()
	defer sinkSrv.Close()
	p := testenv.Producer(b, brokers)
	var cfgs []kafkasource.Config
	var filters []*trigger.Filter
	for i := range triggersPerBroker {
		f := trigger.NewFilter(nil, []eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"type": fmt.Sprintf("t%d", i)}}})
		filters = append(filters, f)
		cfgs = append(cfgs, benchConfig(fmt.Sprintf("trigger-%d", i), brokers, topic, srv.URL,
			&kafkasource.Trigger{Filter: f, Replies: trigger.NewReplier(p, topic)}))
	}
	b.ResetTimer()
	broker := runPath(b, rx, brokerSrv.URL+"/bench/default", "broker", cfgs)
	// The same broker path again, in the same run, on a broker of its own:
	// with larger fetches, or without the header screen.
	variant := func(name, topic, metric string, change func(c *kafkasource.Config)) {
		vs := slices.Clone(cfgs)
		for i := range vs {
			vs[i].Group += "-" + name
			vs[i].Topics = []string{topic}
			change(&vs[i])
		}
		r := runPath(b, rx, brokerSrv.URL+"/bench/"+name, "broker-"+name, vs)
		b.ReportMetric(r.rate, metric+"-events/s")
		b.ReportMetric(ms(r.p99), metric+"-p99-ms")
	}
	if minBytes := os.Getenv("BENCH_FETCH_MIN_BYTES"); minBytes != "" {
		n, _ := strconv.Atoi(minBytes)
		variant("fetch", fetchTopic, "fetch", func(c *kafkasource.Config) {
			c.FetchMinBytes, c.FetchMaxWait = int32(n), 10*time.Millisecond
		})
	}
	if os.Getenv("BENCH_NO_HEADER_SCREEN") != "" {
		variant("event-only", eventOnlyTopic, "noscreen", func(c *kafkasource.Config) {
			c.Trigger = &kafkasource.Trigger{Filter: eventOnly{c.Trigger.Filter}, Replies: c.Trigger.Replies}
		})
	}
	source := runPath(b, rx, sinkSrv.URL+"/bench/sink", "source", []kafkasource.Config{benchConfig("source", brokers, sinkTopic, srv.URL, nil)})
	b.StopTimer()
	for _, f := range filters {
		f.Close()
	}
	b.ReportMetric(broker.rate, "broker-events/s")
	b.ReportMetric(source.rate, "source-events/s")
	b.ReportMetric(100*broker.rate/source.rate, "broker/source-%")
	b.ReportMetric(ms(broker.p99), "broker-p99-ms")
	b.ReportMetric(ms(source.p99), "source-p99-ms")
}

// eventOnly is a filter without its header screen: every record's event
// is built, then matched.
type eventOnly struct{ m kafkasource.Matcher }

func (e eventOnly) Match(ctx context.Context, ev *event.Event) bool { return e.m.Match(ctx, ev) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchConfig(name string, brokers []string, topic, target string, t *kafkasource.Trigger) kafkasource.Config {
	return kafkasource.Config{Name: name, Namespace: "bench", Brokers: brokers, Topics: []string{topic}, Group: name,
		InitialOffset: "earliest", CommitInterval: time.Second, Trigger: t,
		Retrier: kafkasource.Retrier{Policy: delivery.Policy{Retry: 3, Backoff: delivery.Linear, Delay: 10 * time.Millisecond, Timeout: 10 * time.Second}, Target: target}}
}

// receiver is the subscriber of both paths: it answers 202 at once and
// keeps, for the events sent open loop, ingress → subscriber latencies.
type receiver struct {
	mu        sync.Mutex
	sent      map[string]time.Time // id → when its POST was due
	latencies []time.Duration
}

func (rx *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	now := time.Now()
	if id := r.Header.Get("Ce-Id"); strings.HasPrefix(id, "l-") {
		rx.mu.Lock()
		if at, ok := rx.sent[id]; ok {
			rx.latencies = append(rx.latencies, now.Sub(at))
			delete(rx.sent, id)
		}
		rx.mu.Unlock()
	}
	w.WriteHeader(http.StatusAccepted)
}

func (rx *receiver) due(id string, at time.Time) {
	rx.mu.Lock()
	rx.sent[id] = at
	rx.mu.Unlock()
}

// p99 returns the 99th percentile of the latencies kept, and forgets them.
func (rx *receiver) p99() time.Duration {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	l := rx.latencies
	rx.latencies, rx.sent = nil, map[string]time.Time{}
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[(len(l)*99+99)/100-1] // the ceil(0.99 n)-th smallest
}

type pathResult struct {
	rate float64
	p99  time.Duration
}

var benchData = bytes.Repeat([]byte("x"), 1024)

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}

// post sends event n (prefix: c closed loop, l open loop) to url in binary
// mode.
func post(b *testing.B, url, prefix string, n int) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchData))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", fmt.Sprintf("%s-%d", prefix, n))
	req.Header.Set("Ce-Source", "/bench")
	req.Header.Set("Ce-Type", fmt.Sprintf("t%d", n%triggersPerBroker))
	req.Header.Set("Ce-Partitionkey", fmt.Sprint(n%64))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Errorf("ingress answered %d", resp.StatusCode)
	}
}

// runPath runs the sources of one path, once their groups have joined:
// b.N events through the ingress at url by 16 clients, until all are
// delivered (the capacity), then open loop at half of it for about 5 s
// (the p99).
func runPath(b *testing.B, rx *receiver, url, name string, cfgs []kafkasource.Config) pathResult {
	ctx, cancel := context.WithCancel(context.Background())
	var sources []*kafkasource.Source
	var running sync.WaitGroup
	for _, cfg := range cfgs {
		s, err := kafkasource.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		sources = append(sources, s)
		running.Go(func() { _ = s.Run(ctx) })
	}
	defer func() { cancel(); running.Wait() }()
	for _, s := range sources {
		<-s.Ready()
	}
	delivered := func() (n int64) {
		for _, s := range sources {
			n += s.Stats().Delivered
		}
		return n
	}
	waitFor := func(n int64) {
		for delivered() < n && !b.Failed() {
			time.Sleep(2 * time.Millisecond)
		}
	}
	base := delivered() // 0, unless a join redelivered
	start := time.Now()
	next := make(chan int)
	var clients sync.WaitGroup
	for range 16 {
		clients.Go(func() {
			for n := range next {
				post(b, url, "c", n)
			}
		})
	}
	for n := range b.N {
		next <- n
	}
	close(next)
	clients.Wait()
	waitFor(base + int64(b.N))
	rate := float64(b.N) / time.Since(start).Seconds()

	// Open loop at half capacity: each event due at its own time, sent
	// whether or not the earlier ones were answered.
	n2 := max(100, int(rate/2*5))
	interval := time.Duration(float64(time.Second) / (rate / 2))
	base = delivered()
	begin := time.Now()
	for n := range n2 {
		at := begin.Add(time.Duration(n) * interval)
		time.Sleep(time.Until(at))
		rx.due(fmt.Sprintf("l-%d", n), at)
		clients.Go(func() { post(b, url, "l", n) })
	}
	clients.Wait()
	waitFor(base + int64(n2))
	b.Logf("%s: %d events closed loop at %.0f/s, %d open loop at %.0f/s", name, b.N, rate, n2, rate/2)
	return pathResult{rate: rate, p99: rx.p99()}
}
