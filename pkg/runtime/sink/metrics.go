package sink

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

var (
	batchSize = metrics.NewHistogram("sink_batch_size", "Rows per batch written by a sink.",
		prometheus.ExponentialBuckets(1, 4, 9), "function")
	batchSeconds = metrics.NewHistogram("sink_batch_duration_seconds", "Time to write one batch.",
		prometheus.ExponentialBuckets(0.0005, 2, 14), "function", "result")
)

// observe returns the batch.Batcher OnFlush hook recording a sink's writes.
func observe(function string) func(size int, took time.Duration, err error) {
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
