package query

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

var lookupSize = metrics.NewHistogram("query_lookup_batch_size",
	"GET /info reads answered by one PostgreSQL query.", prometheus.ExponentialBuckets(1, 2, 9))

// lookupDefaults coalesce the GET /info reads that arrive together into one
// query (WHERE id = ANY(...)), as many at once as the pool has connections:
// no linger, so a request that comes alone is read at once, and under load
// each query takes what queued while the ones before it ran. One query for
// 20 ids costs PostgreSQL and the function about what one for a single id
// does (docs/BENCHMARKS.md, GET /info).
var lookupDefaults = batch.Config{MaxItems: 256, Flushers: 4, Timeout: 10 * time.Second}

// lookup is one GET /info's read; the flush fills in its answer.
type lookup struct {
	id    uuid.UUID
	job   job.Job
	found bool
}

// newLookups returns the batcher of reads over jobs.
func newLookups(cfg batch.Config, jobs *jobstore.Store) *batch.Batcher[*lookup] {
	b := batch.New(cfg, func(ctx context.Context, ls []*lookup) error {
		ids := make([]uuid.UUID, len(ls))
		for i, l := range ls {
			ids[i] = l.id
		}
		got, err := jobs.GetMany(ctx, ids)
		if err != nil {
			return err
		}
		for _, l := range ls {
			l.job, l.found = got[l.id]
		}
		return nil
	})
	b.OnFlush(func(size int, _ time.Duration, _ error) { lookupSize.WithLabelValues().Observe(float64(size)) })
	return b
}
