package kafkasource

import (
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

var (
	outcomes        = metrics.NewCounter("source_deliveries_total", "Records whose delivery finished, by outcome.", "source", "outcome")
	deliverySeconds = metrics.NewHistogram("source_delivery_seconds", "Time to deliver a record, retries included.",
		prometheus.ExponentialBuckets(0.0005, 2, 18), "source")
	recordLatency = metrics.NewHistogram("source_record_latency_seconds",
		"Time from a record's Kafka timestamp (when it was produced) to the end of its delivery: "+
			"waiting in the source, batching and retries included.",
		[]float64{.001, .002, .005, .01, .015, .02, .025, .03, .04, .05, .06, .075, .1, .15, .2, .3, .5, 1, 2, 5, 10, 30}, "source")
	attempts = metrics.NewCounter("source_attempts_total", "HTTP delivery attempts, by answer status (0: no answer).", "source", "status")
)

// promSeries is the listener that feeds one source's Prometheus series.
// Those of every record are looked up once: a lookup by label values
// hashes them.
type promSeries struct {
	source        string
	delivered     prometheus.Counter
	filtered      prometheus.Counter // a Trigger's most common outcome
	deliverySecs  prometheus.Observer
	recordLatency prometheus.Observer
}

func newMetrics(source string) *promSeries {
	return &promSeries{
		source:        source,
		delivered:     outcomes.WithLabelValues(source, Delivered.String()),
		filtered:      outcomes.WithLabelValues(source, Filtered.String()),
		deliverySecs:  deliverySeconds.WithLabelValues(source),
		recordLatency: recordLatency.WithLabelValues(source),
	}
}

func (sm *promSeries) Received(*sarama.ConsumerMessage) {}

func (sm *promSeries) Attempted(_ string, _ int, a Attempt) {
	attempts.WithLabelValues(sm.source, strconv.Itoa(answerStatus(a))).Inc()
}

func (sm *promSeries) Finished(m *sarama.ConsumerMessage, r Result) {
	switch r.Outcome {
	case Delivered:
		sm.delivered.Inc()
	case Filtered:
		sm.filtered.Inc()
		return // nothing was delivered: no delivery time to observe
	default: // rare: looked up when met
		outcomes.WithLabelValues(sm.source, r.Outcome.String()).Inc()
	}
	if r.Outcome == Aborted {
		return // not finished: delivered again by the next session
	}
	sm.deliverySecs.Observe(r.Took.Seconds())
	if !m.Timestamp.IsZero() {
		sm.recordLatency.Observe(time.Since(m.Timestamp).Seconds())
	}
}
