// Package metrics is the one way jobflow declares Prometheus metrics, in
// the functions and in the engine alike: each is named jobflow_<name> and
// registered with the default registry, which every process serves on
// /metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

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
