package trigger_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/internal/trigger"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// triggersPerBroker is the number of triggers of the benchmark's broker,
// each matching one type of as many.
const triggersPerBroker = 10

// BenchmarkBrokerVersusSource measures issue #17's broker path against the
// KafkaSource path at the same delivered-event count: b.N 1 KB CloudEvents
// (binary mode, types t0..t9 in turn) in a topic of 4 partitions are
// delivered (a) through 10 Triggers, each filtering on one type (so each
// reads every record and delivers a tenth), and (b) by one KafkaSource
// delivering all of them, both to an HTTP receiver that answers 202 at once.
// It reports the deliveries/s of both and the ratio (goal: ≥ 80 %):
//
//	go test -run '^$' -bench BenchmarkBrokerVersusSource -benchtime 20000x ./internal/trigger
func BenchmarkBrokerVersusSource(b *testing.B) {
	brokers := testenv.Kafka(b, 4, topic)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	testenv.ProduceEvents(b, brokers, topic, b.N, func(i int) string { return fmt.Sprintf("t%d", i%triggersPerBroker) })
	p := testenv.Producer(b, brokers)
	b.ResetTimer()
	var cfgs []kafkasource.Config
	var filters []*trigger.Filter
	for i := range triggersPerBroker {
		f := trigger.NewFilter(nil, []eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"type": fmt.Sprintf("t%d", i)}}})
		filters = append(filters, f)
		cfgs = append(cfgs, benchConfig(fmt.Sprintf("trigger-%d", i), brokers, srv.URL,
			&kafkasource.Trigger{Filter: f, Replies: trigger.NewReplier(p, topic)}))
	}
	brokerRate := deliverAll(b, cfgs)
	sourceRate := deliverAll(b, []kafkasource.Config{benchConfig("source", brokers, srv.URL, nil)})
	b.StopTimer()
	for _, f := range filters {
		f.Close()
	}
	b.ReportMetric(brokerRate, "broker-deliveries/s")
	b.ReportMetric(sourceRate, "source-deliveries/s")
	b.ReportMetric(100*brokerRate/sourceRate, "broker/source-%")
}

func benchConfig(name string, brokers []string, target string, t *kafkasource.Trigger) kafkasource.Config {
	return kafkasource.Config{Name: name, Namespace: "bench", Brokers: brokers, Topics: []string{topic}, Group: name,
		InitialOffset: "earliest", CommitInterval: time.Second, Trigger: t,
		Retrier: kafkasource.Retrier{Policy: delivery.Policy{Retry: 3, Backoff: delivery.Linear, Delay: 10 * time.Millisecond, Timeout: 10 * time.Second}, Target: target}}
}

// deliverAll runs the sources until they delivered b.N events in all and
// returns their deliveries per second, group joins included.
func deliverAll(b *testing.B, cfgs []kafkasource.Config) float64 {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var sources []*kafkasource.Source
	done := make(chan struct{}, len(cfgs))
	for _, cfg := range cfgs {
		s, err := kafkasource.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		sources = append(sources, s)
		go func() { _ = s.Run(ctx); done <- struct{}{} }()
	}
	for {
		var n int64
		for _, s := range sources {
			n += s.Stats().Delivered
		}
		if n >= int64(b.N) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	for range cfgs {
		<-done
	}
	return float64(b.N) / elapsed.Seconds()
}
