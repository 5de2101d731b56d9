// Package pgsink is the logic of the pgsink function: it writes jobs rows
// (Kafka Connect JSON with schema) into PostgreSQL with group commit.
package pgsink

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of pgsink.
type Config struct {
	PostgresURL string    `envconfig:"JOBFLOW_POSTGRES_URL" required:"true" desc:"PostgreSQL URL of the jobs database"`
	Batch       batch.Env `envconfig:"PGSINK"`
}

// Batch is pgsink's group commit unless PGSINK_BATCH_* say otherwise. Four
// upserts may run at once (rows go in id order, so they cannot deadlock):
// a delivery then seldom waits for a free writer, which kept its p99
// latency at a quarter load under 50 ms where two writers did not
// (docs/BENCHMARKS.md).
var Batch = batch.Config{MaxItems: 5000, Linger: 2 * time.Millisecond, Flushers: 4, Timeout: 30 * time.Second}

// Sink writes rows.
type Sink struct {
	store   *jobstore.Store
	batcher *batch.Batcher[job.Row]
	stop    func()
}

// New returns an unopened sink.
func New() *Sink { return &Sink{} }

// Open connects, creates the schema and starts the batcher.
func (s *Sink) Open(ctx context.Context) error {
	var cfg Config
	if err := fn.Process("", &cfg); err != nil {
		return err
	}
	store, err := jobstore.Open(ctx, cfg.PostgresURL)
	if err != nil {
		return err
	}
	s.store = store
	bc := cfg.Batch.Config(Batch)
	s.batcher = batch.New(bc, store.Upsert)
	s.batcher.OnFlush(fn.ObserveBatch("pgsink"))
	s.stop = s.batcher.Start()
	slog.Info("pgsink open", "batch", bc)
	return nil
}

// Close stops the batcher and the pool.
func (s *Sink) Close(context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	if s.store != nil {
		s.store.Close()
	}
	return nil
}

// Handle takes a dev.jobflow.job.row event and returns once its row is committed.
func (s *Sink) Handle(ctx context.Context, in event.Event) ([]fn.Output, error) {
	row, err := decode(in)
	if err != nil {
		return nil, err
	}
	return nil, s.write(ctx, row)
}

// HandleBatch takes a batch of row events and returns once all their rows
// are committed; one invalid event refuses the whole batch (400) before
// anything is written.
func (s *Sink) HandleBatch(ctx context.Context, in []event.Event) ([]fn.Output, error) {
	rows, err := fn.DecodeBatch(in, decode)
	if err != nil {
		return nil, err
	}
	return nil, s.write(ctx, rows...)
}

func decode(in event.Event) (job.Row, error) {
	if in.Type() != job.TypeRow {
		return job.Row{}, fn.Invalidf("event type %q: pgsink takes %s", in.Type(), job.TypeRow)
	}
	row, err := job.DecodeRow(in.Data())
	if err != nil {
		return job.Row{}, fn.Invalid(err)
	}
	return row, nil
}

func (s *Sink) write(ctx context.Context, rows ...job.Row) error {
	if s.batcher == nil {
		return fn.Unavailable(errors.New("pgsink not open"))
	}
	if err := s.batcher.Add(ctx, rows...); err != nil {
		return fn.Unavailable(err)
	}
	return nil
}
