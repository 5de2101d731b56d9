package counter

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/counters/cdc/envelope"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/metrics"
	"github.com/jobflow/jobflow/pkg/runtime/sink"
)

// Config of the counter function; its group commit is COUNTER_BATCH_*
// (package sink).
type Config struct {
	CountersURL string `envconfig:"JOBFLOW_COUNTERS_URL" required:"true" desc:"PostgreSQL URL of the counters database"`
	// MessagesTable and UsersTable are the source tables as schema.table.
	MessagesTable string `envconfig:"COUNTER_MESSAGES_TABLE" default:"public.messages" desc:"source table of messages (schema.table)"`
	UsersTable    string `envconfig:"COUNTER_USERS_TABLE" default:"public.users" desc:"source table of users (schema.table)"`
	// DedupeRetention is how long processed event ids are kept; keep it
	// longer than the CDC topics' retention (7 days).
	DedupeRetention time.Duration `envconfig:"COUNTER_DEDUPE_RETENTION" default:"192h" desc:"how long processed event ids are remembered"`
	PruneInterval   time.Duration `envconfig:"COUNTER_PRUNE_INTERVAL" default:"1h" desc:"how often old event ids are pruned; 0 never"`
}

var events = metrics.NewCounter("counter_events_total",
	"Change events handled by the counter function: applied, duplicate (already applied) or ignored.", "result")

// Handler is the counter function's logic: a sink of change events (each
// an Item) into the counters database, and a pruner of the event ids it
// remembers.
type Handler struct {
	*sink.Sink[Item]
	cfg    Config
	tables Tables
	store  *Store
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a handler that is not started.
func New() *Handler {
	h := &Handler{}
	h.Sink = sink.New("counter", batch.Defaults, h.open, h.appendItem)
	return h
}

// open reads the config, connects, creates the schema and starts the
// pruner; the sink then starts its batcher on the store.
func (h *Handler) open(ctx context.Context) (sink.Store[Item], error) {
	if err := fn.Process("", &h.cfg); err != nil {
		return nil, err
	}
	store, err := Open(ctx, h.cfg.CountersURL)
	if err != nil {
		return nil, err
	}
	h.store = store
	h.tables = Tables{Messages: h.cfg.MessagesTable, Users: h.cfg.UsersTable}
	if h.tables.Messages == "" {
		h.tables = DefaultTables
	}
	runCtx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if h.cfg.PruneInterval > 0 && h.cfg.DedupeRetention > 0 {
			h.prune(runCtx)
		}
	}()
	slog.Info("counter open", "messages", h.cfg.MessagesTable, "users", h.cfg.UsersTable)
	return applier{store}, nil
}

// applier is the counters database as the sink's store: Write applies a
// batch once, counting what it applied.
type applier struct{ *Store }

func (a applier) Write(ctx context.Context, items []Item) error {
	res, err := a.Apply(ctx, items)
	if err == nil {
		events.WithLabelValues("applied").Add(float64(res.Applied))
		events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	}
	return err
}

func (a applier) Close() error { a.Store.Close(); return nil }

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

// Stop stops the pruner, then the sink (which closes the store).
func (h *Handler) Stop(ctx context.Context) error {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
	return h.Sink.Stop(ctx)
}

// appendItem is the sink's decoder: one change event (a Kafka record
// wrapped by a KafkaSource, type dev.knative.kafka.event, data = the
// Debezium envelope) is one item, or none for an event that changes
// nothing. The counter never emits anything.
func (h *Handler) appendItem(dst []Item, in event.Event) ([]Item, error) {
	it, err := h.Item(in)
	if err != nil {
		return dst, err
	}
	if it == nil {
		events.WithLabelValues("ignored").Inc()
		return dst, nil
	}
	return append(dst, *it), nil
}

// Item decodes an event; nil for events that change nothing (tombstones,
// other tables).
func (h *Handler) Item(in event.Event) (*Item, error) { return ItemOf(in, h.tables) }

// ItemOf decodes a change event of the source tables; nil for events that
// change nothing (tombstones, other tables). A rebuild decodes the log with it.
func ItemOf(in event.Event, tables Tables) (*Item, error) {
	if ct := in.DataContentType(); ct != "" && !strings.Contains(ct, "json") {
		return nil, fn.Invalidf("data content type %q: the counter takes Debezium JSON change events", ct)
	}
	env, converted, err := envelope.FromCloudEvent(in.Extensions(), in.Data())
	if !converted {
		env, err = envelope.Decode(in.Data())
	}
	if err != nil {
		return nil, fn.Invalid(err)
	}
	if env == nil {
		return nil, nil // tombstone
	}
	return FromEnvelope(env, tables, in.Source()+"#"+in.ID())
}
