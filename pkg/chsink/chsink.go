// Package chsink is the logic of the chsink function: it writes job event
// CSV lines into ClickHouse with group commit.
package chsink

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/batch"
	"github.com/jobflow/jobflow/pkg/eventstore"
	"github.com/jobflow/jobflow/pkg/fn"
	"github.com/jobflow/jobflow/pkg/job"
)

// Config of chsink.
type Config struct {
	ClickHouseAddr string    `envconfig:"JOBFLOW_CLICKHOUSE_ADDR" required:"true" desc:"host:port of ClickHouse's native protocol"`
	ClickHouseDB   string    `envconfig:"JOBFLOW_CLICKHOUSE_DB" default:"default" desc:"ClickHouse database"`
	Batch          batch.Env `envconfig:"CHSINK"`
}

// Sink writes CSV lines.
type Sink struct {
	store   *eventstore.Store
	batcher *batch.Batcher[job.EventLine]
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
	store, err := eventstore.Open(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	s.store = store
	s.batcher = batch.New(cfg.Batch.Config(), store.Insert)
	s.batcher.OnFlush(fn.ObserveBatch("chsink"))
	s.stop = s.batcher.Start()
	slog.Info("chsink open", "batch", cfg.Batch)
	return nil
}

// Close stops the batcher and the connection.
func (s *Sink) Close(context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	if s.store != nil {
		return s.store.Close()
	}
	return nil
}

// Handle takes a dev.jobflow.job.csv event and returns once its lines are written.
func (s *Sink) Handle(ctx context.Context, in event.Event) ([]fn.Output, error) {
	if in.Type() != job.TypeCSV {
		return nil, fn.Invalidf("event type %q: chsink takes %s", in.Type(), job.TypeCSV)
	}
	lines, err := job.DecodeCSV(in.Data())
	if err != nil {
		return nil, fn.Invalid(err)
	}
	if s.batcher == nil {
		return nil, fn.Unavailable(errors.New("chsink not open"))
	}
	if err := s.batcher.Add(ctx, lines...); err != nil {
		return nil, fn.Unavailable(err)
	}
	return nil, nil
}
