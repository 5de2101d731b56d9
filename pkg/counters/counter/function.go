package counter

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/jobflow/jobflow/pkg/counters/cdc/envelope"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of the counter function.
type Config struct {
	CountersURL string    `envconfig:"JOBFLOW_COUNTERS_URL" required:"true" desc:"PostgreSQL URL of the counters database"`
	Batch       batch.Env `envconfig:"COUNTER"`
	// MessagesTable and UsersTable are the source tables as schema.table.
	MessagesTable string `envconfig:"COUNTER_MESSAGES_TABLE" default:"public.messages" desc:"source table of messages (schema.table)"`
	UsersTable    string `envconfig:"COUNTER_USERS_TABLE" default:"public.users" desc:"source table of users (schema.table)"`
	// DedupeRetention is how long processed event ids are kept; keep it
	// longer than the CDC topics' retention (7 days).
	DedupeRetention time.Duration `envconfig:"COUNTER_DEDUPE_RETENTION" default:"192h" desc:"how long processed event ids are remembered"`
	PruneInterval   time.Duration `envconfig:"COUNTER_PRUNE_INTERVAL" default:"1h" desc:"how often old event ids are pruned; 0 never"`
}

var events = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "jobflow_counter_events_total",
	Help: "Change events handled by the counter function: applied, duplicate (already applied) or ignored.",
}, []string{"result"})

// Handler is the counter function's logic.
type Handler struct {
	cfg     Config
	tables  Tables
	store   *Store
	batcher *batch.Batcher[Item]
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns an unopened handler.
func New() *Handler { return &Handler{} }

// Open reads the config, connects, creates the schema and starts the
// batcher and the pruner.
func (h *Handler) Open(ctx context.Context) error {
	if err := fn.Process("", &h.cfg); err != nil {
		return err
	}
	store, err := Open(ctx, h.cfg.CountersURL)
	if err != nil {
		return err
	}
	h.OpenWith(store, h.cfg)
	slog.Info("counter open", "batch", h.cfg.Batch.Config(batch.Defaults), "messages", h.cfg.MessagesTable, "users", h.cfg.UsersTable)
	return nil
}

// OpenWith starts the handler on an open store (tests, benchmarks).
func (h *Handler) OpenWith(store *Store, cfg Config) {
	h.cfg, h.store = cfg, store
	h.tables = Tables{Messages: cfg.MessagesTable, Users: cfg.UsersTable}
	if h.tables.Messages == "" {
		h.tables = DefaultTables
	}
	h.batcher = batch.New(cfg.Batch.Config(batch.Defaults), func(ctx context.Context, items []Item) error {
		res, err := store.Apply(ctx, items)
		if err == nil {
			events.WithLabelValues("applied").Add(float64(res.Applied))
			events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
		}
		return err
	})
	h.batcher.OnFlush(fn.ObserveBatch("counter"))
	runCtx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); h.batcher.Run(runCtx) }()
	if cfg.PruneInterval > 0 && cfg.DedupeRetention > 0 {
		go h.prune(runCtx)
	}
}

func (h *Handler) prune(ctx context.Context) {
	t := time.NewTicker(h.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := h.store.Prune(ctx, h.cfg.DedupeRetention)
			if err != nil {
				slog.Warn("prune", "err", err)
			} else if n > 0 {
				slog.Info("pruned processed event ids", "rows", n)
			}
		}
	}
}

// Close stops the batcher and the pool.
func (h *Handler) Close(context.Context) error {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
	if h.store != nil {
		h.store.Close()
	}
	return nil
}

// Ready is the readiness probe.
func (h *Handler) Ready(context.Context) (bool, error) { return h.batcher != nil, nil }

// Handle takes one change event (a Kafka record wrapped by a KafkaSource,
// type dev.knative.kafka.event, data = the Debezium envelope) and returns
// once its effect is committed. It never emits anything.
func (h *Handler) Handle(ctx context.Context, in event.Event) ([]fn.Output, error) {
	it, err := h.Item(in)
	if err != nil {
		return nil, err
	}
	if it == nil {
		events.WithLabelValues("ignored").Inc()
		return nil, nil
	}
	if h.batcher == nil {
		return nil, fn.Unavailable(errors.New("counter not open"))
	}
	if err := h.batcher.Add(ctx, *it); err != nil {
		return nil, fn.Unavailable(err)
	}
	return nil, nil
}

// Item decodes an event; nil for events that change nothing (tombstones,
// other tables).
func (h *Handler) Item(in event.Event) (*Item, error) {
	if ct := in.DataContentType(); ct != "" && !strings.Contains(ct, "json") {
		return nil, fn.Invalidf("data content type %q: the counter takes Debezium JSON change events", ct)
	}
	env, err := envelope.Decode(in.Data())
	if err != nil {
		return nil, fn.Invalid(err)
	}
	if env == nil {
		return nil, nil // tombstone
	}
	return FromEnvelope(env, h.tables, in.Source()+"#"+in.ID())
}
