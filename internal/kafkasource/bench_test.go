package kafkasource_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/jsonscan"
)

// BenchmarkDelivery measures records delivered per second from a topic of 4
// partitions to an HTTP sink that answers 202 at once, for 1 KB CloudEvent
// records (binary mode, as a KafkaSink writes them); the last mode sends
// them as CloudEvents batches of up to 500 (jobflow.dev/delivery.batch-size):
//
//	go test -run '^$' -bench BenchmarkDelivery -benchtime 20000x ./internal/kafkasource
func BenchmarkDelivery(b *testing.B) {
	for _, mode := range []struct {
		name        string
		ordered     bool
		maxInFlight int
		batchSize   int
	}{{"ordered", true, 0, 0}, {"unordered-100", false, 100, 0}, {"unordered-500", false, 500, 0}, {"unordered-batch-500", false, 16000, 500}} {
		b.Run(mode.name, func(b *testing.B) {
			brokers := testenv.Kafka(b, 4, "bench")
			var got atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				n := 1
				if fn.IsBatch(r.Header) {
					elems, err := jsonscan.Split(body)
					if err != nil {
						w.WriteHeader(http.StatusBadRequest)
						return
					}
					n = len(elems)
				}
				got.Add(int64(n))
				w.WriteHeader(http.StatusAccepted)
			}))
			defer srv.Close()
			testenv.ProduceEvents(b, brokers, "bench", b.N, func(int) string { return "dev.jobflow.bench" })

			b.ResetTimer()
			start := time.Now()
			s, err := kafkasource.New(kafkasource.Config{Name: "bench", Namespace: "b", Brokers: brokers, Topics: []string{"bench"},
				Group: "g", InitialOffset: "earliest", Ordered: mode.ordered, MaxInFlight: mode.maxInFlight, BatchSize: mode.batchSize, CommitInterval: time.Second,
				Retrier: kafkasource.Retrier{Policy: delivery.Policy{Retry: 3, Backoff: delivery.Linear, Delay: 10 * time.Millisecond, Timeout: 10 * time.Second}, Target: srv.URL}},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = s.Run(ctx) }()
			for s.Stats().Delivered < int64(b.N) {
				time.Sleep(2 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
		})
	}
}
