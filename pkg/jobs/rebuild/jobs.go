package rebuild

import (
	"context"
	"fmt"
	"io"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/jobs/verify"
	"github.com/jobflow/jobflow/pkg/runtime/viewdiff"
)

// rowBatch is how many rows one upsert of a rebuild writes.
const rowBatch = 5000

// Jobs rebuilds the PostgreSQL jobs table from the postgres-topic into
// <Fresh>.jobs, compares it with the live table and swaps it in if asked.
func Jobs(ctx context.Context, o Options, out io.Writer) (Diff, error) {
	o.defaults()
	var d Diff
	live, err := jobstore.Open(ctx, o.PostgresURL)
	if err != nil {
		return d, err
	}
	defer live.Close()
	sc, err := viewdiff.Prepare(ctx, live.Pool, o.PostgresURL, o.Fresh, o.Replaced)
	if err != nil {
		return d, err
	}
	store, err := jobstore.Open(ctx, sc.FreshURL)
	if err != nil {
		return d, err
	}
	defer store.Close()

	fmt.Fprintf(out, "jobs: reading %s...\n", o.PostgresTopic)
	l, err := o.ReadLog(ctx, out)
	if err != nil {
		return d, err
	}
	if err := upsert(ctx, store, l.RowList(), out); err != nil {
		return d, err
	}
	// Every column but updated_at (the time of a write, not part of the view).
	d, err = sc.Compare(ctx, live.Pool, "jobs", "id", "status, create_date, finish_date, sleep, data_size, checksum, error", "")
	if err != nil || !o.Swap || (d.Equal() && !o.Force) {
		return d, err
	}
	if err := sc.Swap(ctx, live.Pool, "jobs"); err != nil {
		return d, err
	}
	d.Swapped = true
	// Catch up: what pgsink wrote to the old table while the rebuild ran.
	after, err := verify.ReadLog(ctx, verify.ReadOptions{Brokers: o.Brokers, PostgresTopic: o.PostgresTopic,
		ClickHouseTopic: o.ClickHouseTopic, From: l.Ends})
	if err != nil {
		return d, fmt.Errorf("catch up after the swap: %w", err)
	}
	d.CaughtUp = len(after.Rows)
	return d, upsert(ctx, live, after.RowList(), nil)
}

func upsert(ctx context.Context, s *jobstore.Store, rows []job.Row, out io.Writer) error {
	for i := 0; i < len(rows); i += rowBatch {
		end := min(i+rowBatch, len(rows))
		if err := s.Upsert(ctx, rows[i:end]); err != nil {
			return err
		}
		if out != nil && (end%100000 == 0 || end == len(rows)) {
			fmt.Fprintf(out, "jobs: %d of %d rows written\n", end, len(rows))
		}
	}
	return nil
}
