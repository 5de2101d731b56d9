package fn

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jobflow_function_requests_total",
		Help: "Requests handled, by HTTP status code.",
	}, []string{"function", "code"})
	duration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobflow_function_request_duration_seconds",
		Help:    "Time from request to response, including emitting to sinks.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"function"})
	inflight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobflow_function_inflight_requests",
		Help: "Requests being handled now.",
	}, []string{"function"})
	batchEvents = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobflow_function_batch_events",
		Help:    "Events per batch request (CloudEvents batch mode, local engine only).",
		Buckets: prometheus.ExponentialBuckets(1, 4, 7),
	}, []string{"function"})
	emitted = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jobflow_function_emitted_total",
		Help: "Events sent to sinks, by output and result.",
	}, []string{"function", "output", "result"})
)

var (
	batchSize = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobflow_sink_batch_size",
		Help:    "Rows per batch written by a sink.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 9),
	}, []string{"function"})
	batchSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobflow_sink_batch_duration_seconds",
		Help:    "Time to write one batch.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"function", "result"})
)

// ObserveBatch returns a batch.Batcher OnFlush hook recording metrics.
func ObserveBatch(function string) func(size int, took time.Duration, err error) {
	return func(size int, took time.Duration, err error) {
		result := "ok"
		if err != nil {
			result = "error"
			slog.Warn("batch failed", "function", function, "rows", size, "err", err)
		}
		batchSize.WithLabelValues(function).Observe(float64(size))
		batchSeconds.WithLabelValues(function, result).Observe(took.Seconds())
	}
}
