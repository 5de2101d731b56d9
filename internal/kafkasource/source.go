// Package kafkasource is the local engine's KafkaSource: a consumer group
// that delivers each record to a sink as a CloudEvent with Knative's
// semantics (attribute mapping, ordered or unordered delivery, retries with
// backoff, dead-letter sink), committing a record's offset only once its
// delivery finished.
//
// Its parts, after eventing-kafka-broker's data plane, one job each:
//
//   - source.go: the consumer group; each claim goes to a dispatcher.
//   - ordered.go, unordered.go, bykey.go: the dispatchers (one record in
//     flight per partition, many across partitions, or one per record key);
//     batch.go: the unordered dispatcher's batches. dispatch.go: what they
//     share, and the Deliverer seam between them and what delivering an
//     event means.
//   - trigger.go: a Broker Trigger's delivery (filter, Prefer: reply,
//     replies stored in the broker) around the Retrier.
//   - record.go, transcode.go: a record as a CloudEvent, or as an element
//     of a batch straight from its headers.
//   - retrier.go: retries and the dead-letter sink, around sender.go's one
//     HTTP attempt.
//   - offsets.go: the commit point of a partition delivered unordered.
//   - listener.go, metrics.go: the one Listener that hears every attempt
//     and outcome, and those that keep the Stats, the metrics and the logs.
package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	// Listener, when set, is told what happens to each record, besides
	// the source's Stats, metrics and logs.
	Listener Listener
	// ByKey (with Ordered false) keeps the records of one key in order
	// while records of different keys of a partition go in parallel
	// (jobflow.dev/delivery.order: key; bykey.go). Records without a key
	// share the empty key: in order among themselves.
	ByKey bool
	// Trigger, when set, makes the source a Broker Trigger's dispatcher.
	Trigger *Trigger
	// FetchMinBytes and FetchMaxWait, when set, make each fetch wait
	// (at most FetchMaxWait) for that many bytes: fewer, larger fetches
	// for consumers that read much more than they deliver (the triggers of
	// a broker), at the cost of up to FetchMaxWait of latency when traffic
	// is low. 0: sarama's defaults (1 byte, 500 ms).
	FetchMinBytes int32
	FetchMaxWait  time.Duration
}

// Trigger is what a Broker Trigger adds to a source's delivery.
type Trigger struct {
	// Filter: an event it does not match is finished unsent.
	Filter Matcher
	// Replies takes a subscriber's reply (a 2xx other than 202 with an
	// event); a reply it cannot store fails the attempt.
	Replies Replier
}

// Matcher is a Trigger's filter (package trigger).
type Matcher interface {
	Match(ctx context.Context, e *event.Event) bool
}

// HeaderScreen is a Matcher that can refuse some records from their
// headers alone, before their event is built (package trigger): Rejects
// is true only for a valid CloudEvent record Match would surely refuse.
type HeaderScreen interface {
	Rejects(headers []*sarama.RecordHeader) bool
}

// Replier stores a reply in the broker (package trigger).
type Replier interface {
	Reply(ctx context.Context, e *event.Event) error
}

// Source runs a consumer group.
type Source struct {
	cfg      Config
	log      *slog.Logger
	counter  *counter // the Stats
	consumer claimConsumer
	ready    chan struct{}
	once     sync.Once

	// pause: see Pause. mu guards them.
	mu      sync.Mutex
	gate    chan struct{} // non-nil while paused: closed by resume
	stopRun context.CancelFunc
	left    chan struct{} // closed when the current membership ended
}

// New checks cfg and returns a source.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Topics) == 0 || cfg.Group == "" || cfg.Retrier.Target == "" {
		return nil, fmt.Errorf("kafkasource %s: brokers, topics, group and sink are required", cfg.Name)
	}
	if cfg.BatchSize > 1 && cfg.Ordered {
		return nil, fmt.Errorf("kafkasource %s: batched delivery needs unordered delivery", cfg.Name)
	}
	if cfg.ByKey && (cfg.Ordered || cfg.BatchSize > 1) {
		return nil, fmt.Errorf("kafkasource %s: ordering by key excludes ordered and batched delivery", cfg.Name)
	}
	if cfg.Trigger != nil && cfg.BatchSize > 1 {
		return nil, fmt.Errorf("kafkasource %s: a Trigger delivers one event per request (no batches)", cfg.Name)
	}
	cfg = withDefaults(cfg)
	log = log.With("source", cfg.Name)
	s := &Source{cfg: cfg, log: log, counter: &counter{}, ready: make(chan struct{})}
	all := listeners{s.counter, newMetrics(cfg.Name), logger{log}}
	if cfg.Listener != nil {
		all = append(all, cfg.Listener)
	}
	retrier := cfg.Retrier
	retrier.listener = all
	d := dispatcher{deliverer: &retrier, listener: all, namespace: cfg.Namespace, source: cfg.Name}
	if cfg.Trigger != nil {
		d.deliverer = &triggered{retrier: &retrier, replies: cfg.Trigger.Replies}
		d.broker, d.filter = true, cfg.Trigger.Filter
		d.headers, _ = cfg.Trigger.Filter.(HeaderScreen)
	}
	switch {
	case cfg.Ordered:
		s.consumer = &ordered{d}
		return s, nil
	case cfg.ByKey:
		s.consumer = newByKey(d, cfg.MaxInFlight)
		return s, nil
	}
	u := &unordered{dispatcher: d, slots: make(chan struct{}, cfg.MaxInFlight)}
	if cfg.BatchSize > 1 {
		u.batch = newBatcher(cfg, log)
	}
	s.consumer = u
	return s, nil
}

// withDefaults fills in what cfg leaves out.
func withDefaults(cfg Config) Config {
	if cfg.MaxInFlight < 1 {
		cfg.MaxInFlight = 100
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
	return cfg
}

// Stats returns the running totals.
func (s *Source) Stats() Stats { return s.counter.stats() }

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
	// Records of aborted transactions (a CDC snapshot that died) are never
	// delivered. Knative's KafkaSource data plane reads read_committed too
	// since knative v1.20 (eventing-kafka-broker
	// data-plane/config/source/100-config-kafka-source-data-plane.yaml,
	// isolation.level=read_committed, #4452); its Broker and Channel data
	// planes still read read_uncommitted (100-config-kafka-broker-data-plane.yaml).
	// Triggers run on this config as well: on the engine no Broker topic has
	// a transactional writer, so the difference never shows there.
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
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
	if s.cfg.FetchMinBytes > 0 {
		sc.Consumer.Fetch.Min = s.cfg.FetchMinBytes
	}
	if s.cfg.FetchMaxWait > 0 {
		sc.Consumer.MaxWaitTime = s.cfg.FetchMaxWait
	}
	return sc
}

// Group is the source's consumer group and Topics its topics.
func (s *Source) Group() string { return s.cfg.Group }

// Brokers the source reads from.
func (s *Source) Brokers() []string { return append([]string(nil), s.cfg.Brokers...) }

// Topics the source reads.
func (s *Source) Topics() []string { return append([]string(nil), s.cfg.Topics...) }

// Pause makes Run commit what finished and leave the group (deliveries in
// flight are abandoned, so redelivered later, never skipped), and keeps it
// out until resume is called; the group then has no member from this
// source and its offsets may be reset from outside. Pause returns once the
// source left, or with ctx's error (then it resumes by itself).
func (s *Source) Pause(ctx context.Context) (resume func(), err error) {
	s.mu.Lock()
	if s.gate != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("kafkasource %s: already paused", s.cfg.Name)
	}
	gate := make(chan struct{})
	s.gate = gate
	left, stop := s.left, s.stopRun
	s.mu.Unlock()
	var once sync.Once
	resume = func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(gate)
		})
	}
	if stop != nil {
		stop()
	}
	if left != nil {
		select {
		case <-left:
		case <-ctx.Done():
			resume()
			return nil, ctx.Err()
		}
	}
	s.log.Info("source paused")
	return resume, nil
}

// Run consumes until ctx ends, then commits what finished and leaves the
// group. While paused (Pause), it stays out of the group.
func (s *Source) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
				s.log.Info("source resumed")
			case <-ctx.Done():
				return nil
			}
		}
		if err := s.member(ctx); err != nil {
			return err
		}
	}
	return nil
}

// member is one membership of the group: it consumes until ctx ends or
// Pause stops it, then commits what finished and leaves.
func (s *Source) member(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	left := make(chan struct{})
	defer close(left)
	s.mu.Lock()
	if s.gate != nil { // paused between the check and here
		s.mu.Unlock()
		return nil
	}
	s.stopRun, s.left = cancel, left
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stopRun, s.left = nil, nil
		s.mu.Unlock()
	}()
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
		"ordered", s.cfg.Ordered, "by_key", s.cfg.ByKey, "trigger", s.cfg.Trigger != nil, "max_in_flight", s.cfg.MaxInFlight, "batch_size", s.cfg.BatchSize, "dead_letter", s.cfg.Retrier.DeadLetter)
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, s.cfg.Topics, (*groupHandler)(s)); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			s.log.Warn("consume", "err", err)
			_ = delivery.Sleep(ctx, time.Second)
		}
	}
	err = cg.Close()
	if err != nil && parent.Err() == nil {
		s.log.Warn("leave the group", "err", err) // paused: Run goes on
		return nil
	}
	return err
}

// groupHandler is the sarama.ConsumerGroupHandler of a Source.
type groupHandler Source

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error {
	(*Source)(h).once.Do(func() { close(h.ready) })
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.consumer.consume(sess, claim)
	return nil
}
