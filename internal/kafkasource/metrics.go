package kafkasource

import (
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	outcomes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jobflow_source_deliveries_total",
		Help: "Records whose delivery finished, by outcome.",
	}, []string{"source", "outcome"})
	deliverySeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jobflow_source_delivery_seconds",
		Help:    "Time to deliver a record, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
	}, []string{"source"})
	recordLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jobflow_source_record_latency_seconds",
		Help: "Time from a record's Kafka timestamp (when it was produced) to the end of its delivery: " +
			"waiting in the source, batching and retries included.",
		Buckets: []float64{.001, .002, .005, .01, .015, .02, .025, .03, .04, .05, .06, .075, .1, .15, .2, .3, .5, 1, 2, 5, 10, 30},
	}, []string{"source"})
	attempts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jobflow_source_attempts_total",
		Help: "HTTP delivery attempts, by answer status (0: no answer).",
	}, []string{"source", "status"})
)

// sourceMetrics are one source's series. Those of every record are looked
// up once: a lookup by label values hashes them.
type sourceMetrics struct {
	source        string
	delivered     prometheus.Counter
	deliverySecs  prometheus.Observer
	recordLatency prometheus.Observer
}

func newSourceMetrics(source string) sourceMetrics {
	return sourceMetrics{
		source:        source,
		delivered:     outcomes.WithLabelValues(source, Delivered.String()),
		deliverySecs:  deliverySeconds.WithLabelValues(source),
		recordLatency: recordLatency.WithLabelValues(source),
	}
}

// observeOutcome records n deliveries that ended with o, each after took.
func (sm sourceMetrics) observeOutcome(o Outcome, n int, took time.Duration) {
	c := sm.delivered
	if o != Delivered { // rare: looked up when met
		c = outcomes.WithLabelValues(sm.source, o.String())
	}
	c.Add(float64(n))
	if o != Aborted {
		secs := took.Seconds()
		for range n {
			sm.deliverySecs.Observe(secs)
		}
	}
}

func observeAttempt(source string, a Attempt) {
	attempts.WithLabelValues(source, strconv.Itoa(a.Status)).Inc()
}

// observeRecords records the latency of finished records, as of now.
func (sm sourceMetrics) observeRecords(now time.Time, msgs ...*sarama.ConsumerMessage) {
	for _, m := range msgs {
		if !m.Timestamp.IsZero() {
			sm.recordLatency.Observe(now.Sub(m.Timestamp).Seconds())
		}
	}
}
