// Package jobstore is the PostgreSQL jobs table: the source of truth for a
// job's status. Writes are idempotent, order-free upserts: a job's status
// never moves backwards, so redelivered or reordered events change nothing.
package jobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Schema creates the jobs table; safe to run concurrently and repeatedly.
const Schema = `
SELECT pg_advisory_xact_lock(7463001);
CREATE TABLE IF NOT EXISTS jobs (
	id          uuid PRIMARY KEY,
	status      text NOT NULL CHECK (status IN ('create','finish','fail')),
	create_date timestamptz NOT NULL,
	finish_date timestamptz,
	sleep       bigint NOT NULL,
	data_size   bigint NOT NULL,
	checksum    text,
	error       text,
	updated_at  timestamptz NOT NULL DEFAULT now()
);`

// Store reads and writes jobs.
type Store struct{ *pgdb.DB }

// Open connects to url and creates the schema.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := pgdb.Open(ctx, "jobs database", url, Schema)
	if err != nil {
		return nil, err
	}
	return &Store{db}, nil
}

// upsert merges rows into jobs: the higher-ranked status wins, dates and
// results already known are kept, and a row that would not change is not
// rewritten (a redelivered batch costs no writes). Merge below does the same for rows of
// one batch, since one INSERT may not touch a row twice.
const upsert = `
INSERT INTO jobs AS j (id, status, create_date, finish_date, sleep, data_size, checksum, error)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])
ON CONFLICT (id) DO UPDATE SET
	status = CASE WHEN (CASE EXCLUDED.status WHEN 'create' THEN 1 ELSE 2 END) > (CASE j.status WHEN 'create' THEN 1 ELSE 2 END)
		THEN EXCLUDED.status ELSE j.status END,
	create_date = LEAST(j.create_date, EXCLUDED.create_date),
	finish_date = COALESCE(j.finish_date, EXCLUDED.finish_date),
	checksum    = COALESCE(j.checksum, EXCLUDED.checksum),
	error       = COALESCE(j.error, EXCLUDED.error),
	updated_at  = now()
WHERE (CASE EXCLUDED.status WHEN 'create' THEN 1 ELSE 2 END) > (CASE j.status WHEN 'create' THEN 1 ELSE 2 END)
   OR (j.finish_date IS NULL AND EXCLUDED.finish_date IS NOT NULL)
   OR (j.checksum IS NULL AND EXCLUDED.checksum IS NOT NULL)
   OR (j.error IS NULL AND EXCLUDED.error IS NOT NULL)
   OR j.create_date > EXCLUDED.create_date`

// Upsert writes rows in one statement (one transaction). Rows go in id
// order, so concurrent batches (several flushers or instances) lock the
// rows they share in the same order and cannot deadlock.
func (s *Store) Upsert(ctx context.Context, rows []job.Row) error {
	rows = Merge(rows)
	// Rows in id order: concurrent batches (several flushers or instances)
	// then lock rows in the same order and cannot deadlock.
	slices.SortFunc(rows, func(a, b job.Row) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	n := len(rows)
	ids, statuses := make([]pgtype.UUID, n), make([]string, n) // pgdb.UUID: binary, not text
	creates, finishes := make([]time.Time, n), make([]*time.Time, n)
	sleeps, sizes := make([]int64, n), make([]int64, n)
	sums, errs := make([]*string, n), make([]*string, n)
	for i, r := range rows {
		ids[i], statuses[i], creates[i], finishes[i] = pgdb.UUID(r.ID), string(r.Status), r.CreateDate, r.FinishDate
		sleeps[i], sizes[i], sums[i], errs[i] = r.Sleep, r.DataSize, nullable(r.Checksum), nullable(r.Error)
	}
	if _, err := s.Pool.Exec(ctx, upsert, ids, statuses, creates, finishes, sleeps, sizes, sums, errs); err != nil {
		return fmt.Errorf("upsert %d jobs: %w", n, err)
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Merge folds rows with the same id into one, as the upsert would have
// applied them one after another, in any order.
func Merge(rows []job.Row) []job.Row {
	idx := make(map[uuid.UUID]int, len(rows))
	out := rows[:0:0]
	for _, r := range rows {
		i, seen := idx[r.ID]
		if !seen {
			idx[r.ID] = len(out)
			out = append(out, r)
			continue
		}
		out[i] = MergeRow(out[i], r)
	}
	return out
}

// MergeRow is the upsert's rule for two states of one job.
func MergeRow(a, b job.Row) job.Row {
	m := a
	if b.Status.Rank() > a.Status.Rank() {
		m.Status = b.Status
	}
	if b.CreateDate.Before(a.CreateDate) {
		m.CreateDate = b.CreateDate
	}
	if m.FinishDate == nil {
		m.FinishDate = b.FinishDate
	}
	if m.Checksum == "" {
		m.Checksum = b.Checksum
	}
	if m.Error == "" {
		m.Error = b.Error
	}
	return m
}

// ErrNotFound is returned by Get for a job never seen.
var ErrNotFound = errors.New("job not found")

// columns are the columns a read returns, in scanJob's order.
const columns = `id, status, create_date, finish_date, sleep, data_size, checksum, error`

// Get reads one job.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (job.Job, error) {
	j, err := scanJob(s.Pool.QueryRow(ctx, `SELECT `+columns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, ErrNotFound
	}
	if err != nil {
		return j, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// GetMany reads the jobs of ids in one query; a job never seen is not in
// the map.
func (s *Store) GetMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]job.Job, error) {
	keys := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		keys[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+columns+` FROM jobs WHERE id = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("get %d jobs: %w", len(ids), err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID]job.Job, len(ids))
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("get %d jobs: %w", len(ids), err)
		}
		out[j.ID] = j
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get %d jobs: %w", len(ids), err)
	}
	return out, nil
}

// scanJob reads a row of columns.
func scanJob(row pgx.Row) (job.Job, error) {
	var j job.Job
	var status string
	var sum, errText *string
	if err := row.Scan(&j.ID, &status, &j.CreateDate, &j.FinishDate, &j.Sleep, &j.DataSize, &sum, &errText); err != nil {
		return j, err
	}
	j.Status = job.Status(status)
	j.CreateDate = j.CreateDate.UTC()
	if j.FinishDate != nil {
		t := j.FinishDate.UTC()
		j.FinishDate = &t
	}
	if sum != nil {
		j.Checksum = *sum
	}
	if errText != nil {
		j.Error = *errText
	}
	return j, nil
}
