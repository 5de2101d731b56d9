package fn

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// A function's metrics are declared with NewCounter, NewHistogram and
// NewGauge: each is named jobflow_<name> and registered with the default
// registry, which every function serves on /metrics.

// NewCounter declares the counter jobflow_<name> with the given labels.
func NewCounter(name, help string, labels ...string) *prometheus.CounterVec {
	return promauto.NewCounterVec(prometheus.CounterOpts{Name: "jobflow_" + name, Help: help}, labels)
}

// NewHistogram declares the histogram jobflow_<name> with the given
// buckets and labels.
func NewHistogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return promauto.NewHistogramVec(prometheus.HistogramOpts{Name: "jobflow_" + name, Help: help, Buckets: buckets}, labels)
}

// NewGauge declares the gauge jobflow_<name> with the given labels.
func NewGauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return promauto.NewGaugeVec(prometheus.GaugeOpts{Name: "jobflow_" + name, Help: help}, labels)
}

// The runtime's own metrics, by function.
var (
	requests = NewCounter("function_requests_total", "Requests handled, by HTTP status code.", "function", "code")
	duration = NewHistogram("function_request_duration_seconds", "Time from request to response, including emitting to sinks.",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "function")
	inflight    = NewGauge("function_inflight_requests", "Requests being handled now.", "function")
	batchEvents = NewHistogram("function_batch_events", "Events per batch request (CloudEvents batch mode, local engine only).",
		prometheus.ExponentialBuckets(1, 4, 7), "function")
	emitted = NewCounter("function_emitted_total", "Events sent to sinks, by output and result.", "function", "output", "result")
)
