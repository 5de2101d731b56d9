// Package pgsink is the logic of the pgsink function: it writes jobs rows
// (Kafka Connect JSON with schema) into PostgreSQL with group commit.
package pgsink

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/config/livebatch"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/sink"
)

// Batch is pgsink's group commit unless PGSINK_BATCH_* say otherwise. Four
// upserts may run at once (rows go in id order, so they cannot deadlock):
// a delivery then seldom waits for a free writer, which kept its p99
// latency at a quarter load under 50 ms where two writers did not
// (docs/BENCHMARKS.md).
var Batch = batch.Config{MaxItems: 5000, Linger: 2 * time.Millisecond, Flushers: 4, Timeout: 30 * time.Second}

// LiveKeys is the prefix of pgsink's live batch settings (pgsink's batch size
// and linger follow <LiveKeys>/batch-max-items and <LiveKeys>/batch-linger
// when JOBFLOW_CONFIG_URL names the configuration service; PGSINK_BATCH_*
// are their defaults).
const LiveKeys = "jobs/pgsink"

// New returns a sink of dev.jobflow.job.row events, not started, its batch size and
// linger live.
func New() *sink.Sink[job.Row] {
	return sink.New("pgsink", Batch, open, decode).WithTuner(livebatch.New("pgsink", LiveKeys))
}

type config struct {
	PostgresURL string `envconfig:"JOBFLOW_POSTGRES_URL" required:"true" desc:"PostgreSQL URL of the jobs database"`
}

// rows is the jobs table as a sink's store.
type rows struct{ *jobstore.Store }

func (r rows) Write(ctx context.Context, rs []job.Row) error { return r.Upsert(ctx, rs) }
func (r rows) Close() error                                  { r.Store.Close(); return nil }

func open(ctx context.Context) (sink.Store[job.Row], error) {
	var cfg config
	if err := fn.Process("", &cfg); err != nil {
		return nil, err
	}
	store, err := jobstore.Open(ctx, cfg.PostgresURL)
	if err != nil {
		return nil, err
	}
	return rows{store}, nil
}

func decode(dst []job.Row, in event.Event) ([]job.Row, error) {
	if in.Type() != job.TypeRow {
		return dst, fn.Invalidf("event type %q: pgsink takes %s", in.Type(), job.TypeRow)
	}
	row, err := job.DecodeRow(in.Data())
	if err != nil {
		return dst, fn.Invalid(err)
	}
	return append(dst, row), nil
}
