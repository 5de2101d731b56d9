// Package kafkasource is the local engine's KafkaSource: a consumer group
// that delivers each record to a sink as a CloudEvent with Knative's
// semantics (attribute mapping, ordered or unordered delivery, retries with
// backoff, dead-letter sink), committing a record's offset only once its
// delivery finished.
package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// Config of a source.
type Config struct {
	Name          string
	Namespace     string
	Brokers       []string
	Topics        []string
	Group         string
	InitialOffset string // earliest | latest
	Ordered       bool
	// MaxInFlight caps unordered deliveries in flight across all partitions.
	MaxInFlight int
	// BatchSize > 1 lets an unordered source send up to this many waiting
	// records in one request (see batch.go); 0 or 1: one per request.
	BatchSize int
	// BatchMaxBytes bounds a batch's body (default DefaultBatchMaxBytes).
	BatchMaxBytes int
	// CommitInterval is how often marked offsets are committed (Knative: 5 s).
	CommitInterval time.Duration
	Retrier        Retrier
}

// Stats are running totals.
type Stats struct {
	Delivered, DeadLettered, Dropped, Attempts, Failures int64
	InFlight                                             int64
	// Batches sent, and those refused and delivered one by one instead.
	Batches, BatchFallbacks int64 `json:",omitempty"`
}

// Source runs a consumer group.
type Source struct {
	cfg   Config
	log   *slog.Logger
	stats struct {
		delivered, deadLettered, dropped, attempts, failures, inflight atomic.Int64
		batches, batchFallbacks                                        atomic.Int64
	}
	metrics  sourceMetrics
	batching atomic.Bool   // cleared when the sink refuses batches
	sem      chan struct{} // one slot per record in flight
	requests chan struct{} // one slot per batch request in flight (batching only)
	ready    chan struct{}
	once     sync.Once
}

// New checks cfg and returns a source.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Topics) == 0 || cfg.Group == "" || cfg.Retrier.Target == "" {
		return nil, fmt.Errorf("kafkasource %s: brokers, topics, group and sink are required", cfg.Name)
	}
	if cfg.MaxInFlight < 1 {
		cfg.MaxInFlight = 100
	}
	if cfg.BatchSize > 1 && cfg.Ordered {
		return nil, fmt.Errorf("kafkasource %s: batched delivery needs unordered delivery", cfg.Name)
	}
	if cfg.BatchMaxBytes <= 0 {
		cfg.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 5 * time.Second
	}
	if cfg.Retrier.Sender == nil {
		cfg.Retrier.Sender = NewSender()
	}
	if cfg.Retrier.MaxStallWait <= 0 {
		cfg.Retrier.MaxStallWait = DefaultStallWait
	}
	s := &Source{cfg: cfg, log: log.With("source", cfg.Name), metrics: newSourceMetrics(cfg.Name),
		sem: make(chan struct{}, cfg.MaxInFlight), ready: make(chan struct{})}
	s.batching.Store(cfg.BatchSize > 1)
	// Requests in flight are capped at MaxInFlight/BatchSize (at least 2):
	// while they are all out, records queue up and the next batch is
	// fuller (group commit), instead of many small batches in parallel.
	s.requests = make(chan struct{}, max(2, cfg.MaxInFlight/max(cfg.BatchSize, 1)))
	prev := cfg.Retrier.OnAttempt
	s.cfg.Retrier.OnAttempt = func(target string, n int, a Attempt) {
		s.stats.attempts.Add(1)
		if !a.OK() {
			s.stats.failures.Add(1)
			s.log.Debug("delivery attempt failed", "target", target, "attempt", n, "status", a.Status, "err", a.Err)
		}
		observeAttempt(cfg.Name, a)
		if prev != nil {
			prev(target, n, a)
		}
	}
	return s, nil
}

// Stats returns the running totals.
func (s *Source) Stats() Stats {
	return Stats{Delivered: s.stats.delivered.Load(), DeadLettered: s.stats.deadLettered.Load(),
		Dropped: s.stats.dropped.Load(), Attempts: s.stats.attempts.Load(), Failures: s.stats.failures.Load(),
		InFlight: s.stats.inflight.Load(), Batches: s.stats.batches.Load(), BatchFallbacks: s.stats.batchFallbacks.Load()}
}

// Ready is closed once the group has its first assignment.
func (s *Source) Ready() <-chan struct{} { return s.ready }

// Name of the source.
func (s *Source) Name() string { return s.cfg.Name }

// SaramaConfig is the consumer configuration of a source.
func (s *Source) SaramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.ClientID = "jobflow-" + s.cfg.Name
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = s.cfg.CommitInterval
	sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	if s.cfg.InitialOffset == "earliest" {
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	}
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	sc.Consumer.Group.Session.Timeout = 10 * time.Second
	sc.Consumer.Group.Heartbeat.Interval = 1 * time.Second
	sc.Consumer.MaxProcessingTime = time.Hour // a stalled delivery must not look like a dead consumer
	sc.ChannelBufferSize = 1024
	return sc
}

// Run consumes until ctx ends, then commits what finished and leaves the group.
func (s *Source) Run(ctx context.Context) error {
	cg, err := sarama.NewConsumerGroup(s.cfg.Brokers, s.cfg.Group, s.SaramaConfig())
	if err != nil {
		return fmt.Errorf("kafkasource %s: %w", s.cfg.Name, err)
	}
	go func() {
		for err := range cg.Errors() {
			s.log.Warn("consumer group error", "err", err)
		}
	}()
	s.log.Info("source running", "topics", s.cfg.Topics, "group", s.cfg.Group, "sink", s.cfg.Retrier.Target,
		"ordered", s.cfg.Ordered, "max_in_flight", s.cfg.MaxInFlight, "batch_size", s.cfg.BatchSize, "dead_letter", s.cfg.Retrier.DeadLetter)
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, s.cfg.Topics, (*groupHandler)(s)); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			s.log.Warn("consume", "err", err)
			_ = delivery.Sleep(ctx, time.Second)
		}
	}
	return cg.Close()
}

// groupHandler is the sarama.ConsumerGroupHandler of a Source.
type groupHandler Source

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error {
	(*Source)(h).once.Do(func() { close(h.ready) })
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := (*Source)(h)
	ctx := sess.Context()
	if s.cfg.Ordered {
		for {
			select {
			case <-ctx.Done():
				return nil
			case m, ok := <-claim.Messages():
				if !ok {
					return nil
				}
				s.stats.inflight.Add(1)
				finished := s.deliver(ctx, m)
				s.stats.inflight.Add(-1)
				if !finished {
					return nil // redelivered by the next session, from the committed offset
				}
				s.metrics.observeRecords(time.Now(), m)
				sess.MarkMessage(m, "")
			}
		}
	}
	tracker := newOffsetTracker()
	// finished takes records of this claim whose delivery finished.
	finished := func(msgs ...*sarama.ConsumerMessage) {
		if len(msgs) == 0 {
			return
		}
		s.metrics.observeRecords(time.Now(), msgs...)
		offs := make([]int64, len(msgs))
		for i, m := range msgs {
			offs[i] = m.Offset
		}
		if next, moved := tracker.finish(offs...); moved {
			sess.MarkOffset(msgs[0].Topic, msgs[0].Partition, next, "")
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var m *sarama.ConsumerMessage
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			m = msg
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		batching := s.batching.Load()
		if batching {
			select {
			case s.requests <- struct{}{}:
			case <-ctx.Done():
				<-s.sem
				return nil
			}
		}
		msgs, closed := s.gather(claim, m, batching)
		for _, m := range msgs {
			tracker.add(m.Offset)
		}
		s.stats.inflight.Add(int64(len(msgs)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				for range msgs {
					<-s.sem
				}
				s.stats.inflight.Add(-int64(len(msgs)))
				if batching {
					<-s.requests
				}
			}()
			if len(msgs) == 1 {
				if s.deliver(ctx, msgs[0]) {
					finished(msgs[0])
				}
				return
			}
			s.deliverBatch(ctx, msgs, finished)
		}()
		if closed {
			return nil
		}
	}
}

// gather returns first plus, when batching, the records already waiting in
// the claim's queue, while the batch has room and in-flight slots are free
// (first's slot is taken); it never waits. closed reports the queue was
// closed.
func (s *Source) gather(claim sarama.ConsumerGroupClaim, first *sarama.ConsumerMessage, batching bool) (msgs []*sarama.ConsumerMessage, closed bool) {
	msgs = []*sarama.ConsumerMessage{first}
	if !batching {
		return msgs, false
	}
	size := batchSize(first)
	for len(msgs) < s.cfg.BatchSize {
		select {
		case s.sem <- struct{}{}:
		default:
			return msgs, false
		}
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				<-s.sem
				return msgs, true
			}
			msgs = append(msgs, m)
			if size += batchSize(m); size >= s.cfg.BatchMaxBytes {
				return msgs, false
			}
		default:
			<-s.sem
			return msgs, false
		}
	}
	return msgs, false
}

// deliver delivers one record; false means it was not finished (the
// session ended) and must be delivered again.
func (s *Source) deliver(ctx context.Context, m *sarama.ConsumerMessage) bool {
	start := time.Now()
	e, ok := s.toEvent(ctx, m, start)
	if !ok {
		return true
	}
	outcome, last := s.cfg.Retrier.Deliver(ctx, e)
	s.metrics.observeOutcome(outcome, 1, time.Since(start))
	switch outcome {
	case Delivered:
		s.stats.delivered.Add(1)
	case DeadLettered:
		s.stats.deadLettered.Add(1)
		s.log.Warn("event dead-lettered", "id", e.ID(), "type", e.Type(), "status", last.Status, "err", last.Err)
	case Dropped:
		s.stats.dropped.Add(1)
		s.log.Error("event refused by its sink and no dead-letter sink: dropped", "id", e.ID(), "type", e.Type(),
			"status", last.Status, "body", string(last.Body))
	}
	return outcome != Aborted
}

// toEvent maps m; a record that cannot be mapped at all is counted as
// dropped and ok is false.
func (s *Source) toEvent(ctx context.Context, m *sarama.ConsumerMessage, start time.Time) (*event.Event, bool) {
	e, err := ToEvent(ctx, m, s.cfg.Namespace, s.cfg.Name)
	if err != nil {
		// Only a record whose data cannot be set at all: keep it visible.
		s.log.Error("record cannot be mapped to a CloudEvent; skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
		s.stats.dropped.Add(1)
		s.metrics.observeOutcome(Dropped, 1, time.Since(start))
		return nil, false
	}
	return e, true
}
