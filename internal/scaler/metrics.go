package scaler

import (
	"strconv"
	"sync"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	mInstances = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobflow_scaler_instances",
		Help: "Instances of a function, by state (ready, starting, draining).",
	}, []string{"function", "state"})
	mDesired = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobflow_scaler_desired_instances",
		Help: "Instances the autoscaler wants.",
	}, []string{"function"})
	mPanic = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobflow_scaler_panic",
		Help: "1 while the autoscaler is in panic mode.",
	}, []string{"function"})
	mColdStarts = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobflow_scaler_cold_start_seconds",
		Help:    "Time from starting an instance's process to its first ready answer.",
		Buckets: []float64{.005, .01, .02, .03, .05, .075, .1, .2, .5, 1, 2, 5, 10},
	}, []string{"function"})
	mHeld = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobflow_activator_held_requests",
		Help: "Requests the activator holds now, waiting for a ready instance.",
	}, []string{"function"})
	mHeldTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jobflow_activator_held_requests_total",
		Help: "Requests that had to wait for an instance.",
	}, []string{"function"})
	mHoldSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobflow_activator_hold_seconds",
		Help:    "How long held requests waited for an instance.",
		Buckets: []float64{.001, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30},
	}, []string{"function"})
	mInflight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobflow_activator_inflight_requests",
		Help: "Requests in the activator (held or proxied), per function.",
	}, []string{"function"})
	mInstanceInflight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobflow_activator_instance_inflight_requests",
		Help: "Requests proxied to an instance and not yet answered, by instance slot.",
	}, []string{"function", "slot"})
	mRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jobflow_activator_requests_total",
		Help: "Requests through the activator, by HTTP status code (502/503/504 are the activator's own).",
	}, []string{"function", "code"})
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
