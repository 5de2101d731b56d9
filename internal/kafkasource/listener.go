package kafkasource

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// Listener is told what happens to each record, as eventing-kafka-broker's
// RecordDispatcherListener is: the one place where outcomes are observed.
// The Stats, the Prometheus metrics and the logs are listeners; a test can
// add its own (Config.Listener). Every record that is Received is Finished
// exactly once. Hooks are called from many goroutines and must not block.
type Listener interface {
	// Received: m was taken from its partition to be delivered.
	Received(m *sarama.ConsumerMessage)
	// Attempted: one request to target, carrying events events (more than
	// one: a batch), ended with a.
	Attempted(target string, events int, a Attempt)
	// Finished: the delivery of m ended as r says.
	Finished(m *sarama.ConsumerMessage, r Result)
}

// Result is how the delivery of one record ended.
type Result struct {
	Outcome Outcome
	// Last is the sink's last answer (why a record was dead-lettered or
	// dropped); for a record that could not be mapped to a CloudEvent, only
	// Err is set.
	Last Attempt
	// Took is the time since the record was received.
	Took time.Duration
}

// listeners tells each of its listeners, in order.
type listeners []Listener

func (ls listeners) Received(m *sarama.ConsumerMessage) {
	for _, l := range ls {
		l.Received(m)
	}
}

func (ls listeners) Attempted(target string, events int, a Attempt) {
	for _, l := range ls {
		l.Attempted(target, events, a)
	}
}

func (ls listeners) Finished(m *sarama.ConsumerMessage, r Result) {
	for _, l := range ls {
		l.Finished(m, r)
	}
}

// Stats are running totals.
type Stats struct {
	Delivered    int64 `json:"delivered"`     // records the target took (2xx)
	DeadLettered int64 `json:"dead_lettered"` // records sent to the dead-letter sink
	Dropped      int64 `json:"dropped"`       // records given up without a dead-letter sink
	Attempts     int64 `json:"attempts"`      // requests made, retries and batches included
	Failures     int64 `json:"failures"`      // attempts that failed (retried or not)
	InFlight     int64 `json:"in_flight"`     // records taken and not finished yet
	// Filtered: events a Trigger's filter did not match (finished unsent).
	Filtered int64 `json:"filtered"`
	// Batches sent, and those refused (their events are then delivered one
	// by one).
	Batches        int64 `json:"batches"`
	BatchFallbacks int64 `json:"batch_fallbacks"`
}

// counter is the listener that keeps a source's Stats.
type counter struct {
	received, delivered, deadLettered, dropped, aborted, filtered atomic.Int64
	attempts, failures, batches, batchFallbacks                   atomic.Int64
}

func (c *counter) Received(*sarama.ConsumerMessage) { c.received.Add(1) }

func (c *counter) Attempted(_ string, events int, a Attempt) {
	c.attempts.Add(1)
	if !a.OK() {
		c.failures.Add(1)
	}
	if events > 1 {
		c.batches.Add(1)
		if !a.OK() {
			c.batchFallbacks.Add(1)
		}
	}
}

func (c *counter) Finished(_ *sarama.ConsumerMessage, r Result) {
	switch r.Outcome {
	case Delivered:
		c.delivered.Add(1)
	case DeadLettered:
		c.deadLettered.Add(1)
	case Dropped:
		c.dropped.Add(1)
	case Aborted:
		c.aborted.Add(1)
	case Filtered:
		c.filtered.Add(1)
	}
}

// stats returns the totals; in flight is what was received and is not
// finished yet.
func (c *counter) stats() Stats {
	s := Stats{Delivered: c.delivered.Load(), DeadLettered: c.deadLettered.Load(), Dropped: c.dropped.Load(),
		Attempts: c.attempts.Load(), Failures: c.failures.Load(),
		Batches: c.batches.Load(), BatchFallbacks: c.batchFallbacks.Load(), Filtered: c.filtered.Load()}
	// A record is received before it finishes, and received is read last:
	// in flight is never below zero.
	finished := s.Delivered + s.DeadLettered + s.Dropped + s.Filtered + c.aborted.Load()
	s.InFlight = c.received.Load() - finished
	return s
}

// logger is the listener that logs what an operator must see: records
// dead-lettered or dropped; failed attempts at debug level.
type logger struct{ log *slog.Logger }

func (l logger) Received(*sarama.ConsumerMessage) {}

func (l logger) Attempted(target string, events int, a Attempt) {
	if !a.OK() {
		l.log.Debug("delivery attempt failed", "target", target, "events", events, "status", a.Status, "err", a.Err)
	}
}

func (l logger) Finished(m *sarama.ConsumerMessage, r Result) {
	at := []any{"topic", m.Topic, "partition", m.Partition, "offset", m.Offset}
	switch {
	case r.Outcome == DeadLettered:
		l.log.Warn("event dead-lettered", append(at, "status", answerStatus(r.Last), "err", r.Last.Err)...)
	case r.Outcome == Dropped && errors.Is(r.Last.Err, ErrInvalidCloudEvent):
		// The Kafka broker's InvalidCloudEvent: its offset is committed.
		l.log.Warn("record of the broker's topic is not a CloudEvent; skipped", append(at, "err", r.Last.Err)...)
	case r.Outcome == Dropped && answerStatus(r.Last) == 0:
		// Only a record whose data cannot be set at all: keep it visible.
		l.log.Error("record cannot be mapped to a CloudEvent; skipped", append(at, "err", r.Last.Err)...)
	case r.Outcome == Dropped:
		l.log.Error("event refused by its sink and no dead-letter sink: dropped",
			append(at, "status", answerStatus(r.Last), "body", string(r.Last.Body), "err", r.Last.Err)...)
	}
}
