// Package chsink is the logic of the chsink function: it writes job event
// CSV lines into ClickHouse with group commit.
package chsink

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/config/livebatch"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/sink"
)

// Batch is chsink's group commit unless CHSINK_BATCH_* say otherwise: every
// INSERT is a part on disk that ClickHouse writes and later merges, at a
// cost per part far above its cost per row, so one insert runs at a time
// and takes every row waiting (docs/BENCHMARKS.md: about 1,000-row inserts
// from 2 writers kept ClickHouse busy at 45k rows/s; one writer taking up
// to 100k rows more than doubled the rate).
var Batch = batch.Config{MaxItems: 100000, Linger: 2 * time.Millisecond, Flushers: 1, Timeout: 30 * time.Second}

// LiveKeys is the prefix of chsink's live batch settings (chsink's batch size
// and linger follow <LiveKeys>/batch-max-items and <LiveKeys>/batch-linger
// when JOBFLOW_CONFIG_URL names the configuration service; CHSINK_BATCH_*
// are their defaults).
const LiveKeys = "jobs/chsink"

// New returns a sink of dev.jobflow.job.csv events, not started, its batch size and
// linger live.
func New() *sink.Sink[job.EventLine] {
	return sink.New("chsink", Batch, open, decode).WithTuner(livebatch.New("chsink", LiveKeys))
}

type config struct {
	ClickHouseAddr string `envconfig:"JOBFLOW_CLICKHOUSE_ADDR" required:"true" desc:"host:port of ClickHouse's native protocol"`
	ClickHouseDB   string `envconfig:"JOBFLOW_CLICKHOUSE_DB" default:"default" desc:"ClickHouse database"`
}

// lines is the job_events table as a sink's store.
type lines struct{ *eventstore.Store }

func (l lines) Write(ctx context.Context, ls []job.EventLine) error { return l.Insert(ctx, ls) }

func open(ctx context.Context) (sink.Store[job.EventLine], error) {
	var cfg config
	if err := fn.Process("", &cfg); err != nil {
		return nil, err
	}
	store, err := eventstore.Open(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDB)
	if err != nil {
		return nil, err
	}
	return lines{store}, nil
}

// decode appends the lines of a CSV event to dst.
func decode(dst []job.EventLine, in event.Event) ([]job.EventLine, error) {
	if in.Type() != job.TypeCSV {
		return dst, fn.Invalidf("event type %q: chsink takes %s", in.Type(), job.TypeCSV)
	}
	out, err := job.AppendCSVLines(dst, in.Data())
	if err != nil {
		return dst, fn.Invalid(err)
	}
	return out, nil
}
