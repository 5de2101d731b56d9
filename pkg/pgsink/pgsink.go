// Package pgsink is the logic of the pgsink function: it writes jobs rows
// (Kafka Connect JSON with schema) into PostgreSQL with group commit.
package pgsink

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/batch"
	"github.com/jobflow/jobflow/pkg/fn"
	"github.com/jobflow/jobflow/pkg/job"
	"github.com/jobflow/jobflow/pkg/jobstore"
)

// Config of pgsink.
type Config struct {
	PostgresURL string    `envconfig:"JOBFLOW_POSTGRES_URL" required:"true" desc:"PostgreSQL URL of the jobs database"`
	Batch       batch.Env `envconfig:"PGSINK"`
}

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
	s.batcher = batch.New(cfg.Batch.Config(), store.Upsert)
	s.batcher.OnFlush(fn.ObserveBatch("pgsink"))
	s.stop = s.batcher.Start()
	slog.Info("pgsink open", "batch", cfg.Batch)
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
	if in.Type() != job.TypeRow {
		return nil, fn.Invalidf("event type %q: pgsink takes %s", in.Type(), job.TypeRow)
	}
	row, err := job.DecodeRow(in.Data())
	if err != nil {
		return nil, fn.Invalid(err)
	}
	if s.batcher == nil {
		return nil, fn.Unavailable(errors.New("pgsink not open"))
	}
	if err := s.batcher.Add(ctx, row); err != nil {
		return nil, fn.Unavailable(err)
	}
	return nil, nil
}
