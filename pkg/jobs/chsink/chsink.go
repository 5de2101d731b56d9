// Package chsink is the logic of the chsink function: it writes job event
// CSV lines into ClickHouse with group commit.
package chsink

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of chsink.
type Config struct {
	ClickHouseAddr string    `envconfig:"JOBFLOW_CLICKHOUSE_ADDR" required:"true" desc:"host:port of ClickHouse's native protocol"`
	ClickHouseDB   string    `envconfig:"JOBFLOW_CLICKHOUSE_DB" default:"default" desc:"ClickHouse database"`
	Batch          batch.Env `envconfig:"CHSINK"`
}

// Batch is chsink's group commit unless CHSINK_BATCH_* say otherwise: every
// INSERT is a part on disk that ClickHouse writes and later merges, at a
// cost per part far above its cost per row, so one insert runs at a time
// and takes every row waiting (docs/BENCHMARKS.md: about 1,000-row inserts
// from 2 writers kept ClickHouse busy at 45k rows/s; one writer taking up
// to 100k rows more than doubled the rate).
var Batch = batch.Config{MaxItems: 100000, Linger: 2 * time.Millisecond, Flushers: 1, Timeout: 30 * time.Second}

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
	bc := cfg.Batch.Config(Batch)
	s.batcher = batch.New(bc, store.Insert)
	s.batcher.OnFlush(fn.ObserveBatch("chsink"))
	s.stop = s.batcher.Start()
	slog.Info("chsink open", "batch", bc)
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
	lines, err := decode(in)
	if err != nil {
		return nil, err
	}
	return nil, s.write(ctx, lines)
}

// HandleBatch takes a batch of CSV events and returns once all their lines
// are written; one invalid event refuses the whole batch (400) before
// anything is written.
func (s *Sink) HandleBatch(ctx context.Context, in []event.Event) ([]fn.Output, error) {
	lines, err := fn.AppendBatch(in, appendDecoded)
	if err != nil {
		return nil, err
	}
	return nil, s.write(ctx, lines)
}

func decode(in event.Event) ([]job.EventLine, error) { return appendDecoded(nil, in) }

// appendDecoded appends the lines of a CSV event to dst.
func appendDecoded(dst []job.EventLine, in event.Event) ([]job.EventLine, error) {
	if in.Type() != job.TypeCSV {
		return dst, fn.Invalidf("event type %q: chsink takes %s", in.Type(), job.TypeCSV)
	}
	lines, err := job.AppendCSVLines(dst, in.Data())
	if err != nil {
		return dst, fn.Invalid(err)
	}
	return lines, nil
}

func (s *Sink) write(ctx context.Context, lines []job.EventLine) error {
	if s.batcher == nil {
		return fn.Unavailable(errors.New("chsink not open"))
	}
	if err := s.batcher.Add(ctx, lines...); err != nil {
		return fn.Unavailable(err)
	}
	return nil
}
