package rebuild

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

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
	freshURL, err := viewdiff.WithSearchPath(o.PostgresURL, o.Fresh)
	if err != nil {
		return d, err
	}
	live, err := jobstore.Open(ctx, o.PostgresURL)
	if err != nil {
		return d, err
	}
	defer live.Close()
	var liveSchema string
	if err := live.Pool.QueryRow(ctx, "SELECT current_schema()").Scan(&liveSchema); err != nil {
		return d, fmt.Errorf("live schema: %w", err)
	}
	fresh := pgx.Identifier{o.Fresh}.Sanitize()
	if _, err := live.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+fresh+" CASCADE; CREATE SCHEMA "+fresh); err != nil {
		return d, fmt.Errorf("fresh schema %s: %w", o.Fresh, err)
	}
	store, err := jobstore.Open(ctx, freshURL)
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
	liveTable := pgx.Identifier{liveSchema, "jobs"}.Sanitize()
	freshTable := pgx.Identifier{o.Fresh, "jobs"}.Sanitize()
	if d, err = compareJobs(ctx, live, liveTable, freshTable); err != nil {
		return d, err
	}
	if !o.Swap || (d.Equal() && !o.Force) {
		return d, nil
	}
	replaced := pgx.Identifier{o.Replaced}.Sanitize()
	err = pgx.BeginFunc(ctx, live.Pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+replaced+"; DROP TABLE IF EXISTS "+
			pgx.Identifier{o.Replaced, "jobs"}.Sanitize()+"; ALTER TABLE "+liveTable+" SET SCHEMA "+replaced+
			"; ALTER TABLE "+freshTable+" SET SCHEMA "+pgx.Identifier{liveSchema}.Sanitize())
		return err
	})
	if err != nil {
		return d, fmt.Errorf("swap jobs tables: %w", err)
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

// compareJobs compares every column but updated_at (the time of a write,
// not part of the view).
func compareJobs(ctx context.Context, s *jobstore.Store, live, fresh string) (Diff, error) {
	var d Diff
	if err := s.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+live+"), (SELECT count(*) FROM "+fresh+")").Scan(&d.Live, &d.Rebuilt); err != nil {
		return d, fmt.Errorf("count jobs: %w", err)
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT coalesce(l.id, r.id)::text, l.id IS NULL, r.id IS NULL
		FROM `+live+` l FULL JOIN `+fresh+` r ON l.id = r.id
		WHERE l.id IS NULL OR r.id IS NULL
		   OR (l.status, l.create_date, l.finish_date, l.sleep, l.data_size, l.checksum, l.error)
		      IS DISTINCT FROM (r.status, r.create_date, r.finish_date, r.sleep, r.data_size, r.checksum, r.error)`)
	if err != nil {
		return d, fmt.Errorf("compare jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var noLive, noFresh bool
		if err := rows.Scan(&id, &noLive, &noFresh); err != nil {
			return d, fmt.Errorf("compare jobs: %w", err)
		}
		switch {
		case noLive:
			d.Missing = append(d.Missing, id)
		case noFresh:
			d.Extra = append(d.Extra, id)
		default:
			d.Differ = append(d.Differ, id)
		}
	}
	return d, rows.Err()
}
