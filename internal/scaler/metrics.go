package scaler

import (
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
