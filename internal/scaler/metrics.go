package scaler

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

var (
	mInstances  = metrics.NewGauge("scaler_instances", "Instances of a function, by state (ready, starting, draining).", "function", "state")
	mDesired    = metrics.NewGauge("scaler_desired_instances", "Instances the autoscaler wants.", "function")
	mPanic      = metrics.NewGauge("scaler_panic", "1 while the autoscaler is in panic mode.", "function")
	mColdStarts = metrics.NewHistogram("scaler_cold_start_seconds", "Time from starting an instance's process to its first ready answer.",
		[]float64{.005, .01, .02, .03, .05, .075, .1, .2, .5, 1, 2, 5, 10}, "function")
	mHeld        = metrics.NewGauge("activator_held_requests", "Requests the activator holds now, waiting for a ready instance.", "function")
	mHeldTotal   = metrics.NewCounter("activator_held_requests_total", "Requests that had to wait for an instance.", "function")
	mHoldSeconds = metrics.NewHistogram("activator_hold_seconds", "How long held requests waited for an instance.",
		[]float64{.001, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}, "function")
	mInflight         = metrics.NewGauge("activator_inflight_requests", "Requests in the activator (held or proxied), per function.", "function")
	mInstanceInflight = metrics.NewGauge("activator_instance_inflight_requests", "Requests proxied to an instance and not yet answered, by instance slot.", "function", "slot")
	mRequests         = metrics.NewCounter("activator_requests_total", "Requests through the activator, by HTTP status code (502/503/504 are the activator's own).", "function", "code")
)

// activatorMetrics are one function's activator metrics, resolved once so
// that a request does no label lookup.
type activatorMetrics struct {
	function  string
	inflight  prometheus.Gauge
	held      prometheus.Gauge
	heldTotal prometheus.Counter
	hold      prometheus.Observer

	mu    sync.Mutex
	codes map[int]prometheus.Counter
}

func newActivatorMetrics(function string) *activatorMetrics {
	return &activatorMetrics{
		function: function,
		inflight: mInflight.WithLabelValues(function), held: mHeld.WithLabelValues(function),
		heldTotal: mHeldTotal.WithLabelValues(function), hold: mHoldSeconds.WithLabelValues(function),
		codes: map[int]prometheus.Counter{},
	}
}

// countCode counts one request answered with code.
func (m *activatorMetrics) countCode(code int) {
	m.mu.Lock()
	c := m.codes[code]
	if c == nil {
		c = mRequests.WithLabelValues(m.function, strconv.Itoa(code))
		m.codes[code] = c
	}
	m.mu.Unlock()
	c.Inc()
}

// publishInstances sets the instance gauges of a function: its instances by
// state and the requests in flight at each slot.
func publishInstances(function string, ready, starting, draining int, insts []*instance) {
	mInstances.WithLabelValues(function, "ready").Set(float64(ready))
	mInstances.WithLabelValues(function, "starting").Set(float64(starting))
	mInstances.WithLabelValues(function, "draining").Set(float64(draining))
	for _, in := range insts {
		mInstanceInflight.WithLabelValues(function, strconv.Itoa(in.slot)).Set(float64(in.inflight.Load()))
	}
}

// forgetInstance drops the gauge of a stopped instance's slot.
func forgetInstance(function string, in *instance) {
	mInstanceInflight.DeleteLabelValues(function, strconv.Itoa(in.slot))
}

// publishDecision sets the autoscaler's gauges.
func publishDecision(function string, d autoscaler.Decision) {
	mDesired.WithLabelValues(function).Set(float64(d.Desired))
	panicking := 0.0
	if d.Panic {
		panicking = 1
	}
	mPanic.WithLabelValues(function).Set(panicking)
}
