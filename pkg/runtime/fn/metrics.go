package fn

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

// The runtime's own metrics, by function.
var (
	requests = metrics.NewCounter("function_requests_total", "Requests handled, by HTTP status code.", "function", "code")
	duration = metrics.NewHistogram("function_request_duration_seconds", "Time from request to response, including emitting to sinks.",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "function")
	inflight    = metrics.NewGauge("function_inflight_requests", "Requests being handled now.", "function")
	batchEvents = metrics.NewHistogram("function_batch_events", "Events per batch request (CloudEvents batch mode, local engine only).",
		prometheus.ExponentialBuckets(1, 4, 7), "function")
	emitted = metrics.NewCounter("function_emitted_total", "Events sent to sinks, by output and result.", "function", "output", "result")
)

// emitBatchEvents is the size of the emitter's group commits (local engine only).
var emitBatchEvents = metrics.NewHistogram("function_emit_batch_events", "Events per group commit of the emitter to one sink (JOBFLOW_EMIT_BATCH, local engine only).",
	prometheus.ExponentialBuckets(1, 4, 7), "function", "output")
