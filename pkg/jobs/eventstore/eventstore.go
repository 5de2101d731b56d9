// Package eventstore is the ClickHouse job_events table: the history of job
// events for analytics, two rows per job (create, then finish or fail).
//
// Duplicates: a redelivered event carries the same (job_id, event) key, and
// the table is a ReplacingMergeTree on that key, so merges collapse
// duplicates and every read uses FINAL, which collapses those not merged
// yet. Queries therefore never see a duplicate, whatever the delivery did.
package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
)

// Schema of job_events (works on ClickHouse 18.16 and current servers).
//
// job_id is a UUID (16 bytes) rather than its 36-character text: every
// insert is a part that ClickHouse later merges in (job_id, event) order,
// and at moderate rates (tens of inserts a second) those merges took a
// whole core of 18.16 with String keys. With UUID keys chsink's p99 at
// 23k events/s went from 58-102 ms to 29 ms (docs/BENCHMARKS.md). Queries
// pass the id's text, which ClickHouse converts, and Insert writes text ids
// into a table made by an older jobflow (String), so such a table keeps
// working.
const Schema = `
CREATE TABLE IF NOT EXISTS job_events (
	job_id    UUID,
	event     String,
	ts        DateTime,
	ts_ms     UInt64,
	sleep     UInt64,
	data_size UInt64,
	event_id  String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (job_id, event)`

// Store reads and writes job events.
type Store struct {
	Conn    driver.Conn
	textIDs bool // job_id is a String column (a table made by an older jobflow)
}

// Open connects to addr (host:port of the native protocol) and creates the schema.
func Open(ctx context.Context, addr, database string) (*Store, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 60 * time.Second,
		// Compression off: ClickHouse 18.16 and clickhouse-go v2.26 agree on none.
		MaxOpenConns: 8,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", addr, err)
	}
	s := &Store{Conn: conn}
	if err := conn.Exec(ctx, Schema); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("job_events schema: %w", err)
	}
	var idType string
	if err := conn.QueryRow(ctx, "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'job_events' AND name = 'job_id'").Scan(&idType); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("job_events schema: job_id's type: %w", err)
	}
	if idType != "UUID" {
		s.textIDs = true
		slog.Warn("job_events.job_id is "+idType+", made by an older jobflow: it works, but ClickHouse's merges cost more; drop the table to have it made again with UUID keys",
			"database", database)
	}
	return s, nil
}

// Close closes the connection.
func (s *Store) Close() error { return s.Conn.Close() }

// Insert writes lines in one batch (one INSERT, one part).
//
// Rows go in by column, one slice per column: appending row by row boxed
// every value in an interface and converted each job id to text and back
// (a tenth of chsink's CPU).
//
// The insert runs without ctx's cancellation (bounded by the driver's
// ReadTimeout instead): clickhouse-go v2.26 closes a connection when its
// query's context ends, and a context cancelled just after the insert
// returned closed the pooled connection under the next batch ("use of
// closed network connection").
func (s *Store) Insert(ctx context.Context, lines []job.EventLine) error {
	ctx = context.WithoutCancel(ctx)
	n := len(lines)
	var ids any
	if s.textIDs {
		t := make([]string, n)
		for i := range lines {
			t[i] = lines[i].JobID.String()
		}
		ids = t
	} else {
		u := make([]uuid.UUID, n)
		for i := range lines {
			u[i] = lines[i].JobID
		}
		ids = u
	}
	events, eventIDs := make([]string, n), make([]string, n)
	ts := make([]time.Time, n)
	tsMS, sleep, size := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	for i := range lines {
		l := &lines[i]
		t := l.TS.UTC()
		events[i], eventIDs[i] = string(l.Event), l.EventID
		ts[i], tsMS[i] = t.Truncate(time.Second), uint64(t.UnixMilli())
		sleep[i], size[i] = uint64(l.Sleep), uint64(l.DataSize)
	}
	b, err := s.Conn.PrepareBatch(ctx, "INSERT INTO job_events (job_id, event, ts, ts_ms, sleep, data_size, event_id)")
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	for i, col := range []any{ids, events, ts, tsMS, sleep, size, eventIDs} {
		if err := b.Column(i).Append(col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append column %d: %w", i, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d events: %w", n, err)
	}
	return nil
}

// EventsOf returns the distinct events stored for a job, in time order.
func (s *Store) EventsOf(ctx context.Context, jobID string) ([]string, error) {
	rows, err := s.Conn.Query(ctx, "SELECT event FROM job_events FINAL WHERE job_id = ? ORDER BY ts_ms", jobID)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Stats are simple analytics over all jobs.
type Stats struct {
	Created         uint64   `json:"created"`
	Finished        uint64   `json:"finished"`
	Failed          uint64   `json:"failed"`
	AvgDurationMS   float64  `json:"avg_duration_ms"`
	P99DurationMS   float64  `json:"p99_duration_ms"`
	AvgDataSize     float64  `json:"avg_data_size"`
	EventsPerMinute []Bucket `json:"events_per_minute"`
}

// Bucket counts events in one minute.
type Bucket struct {
	Minute string `json:"minute"`
	Events uint64 `json:"events"`
}

// Stats computes Stats; duration is finish ts_ms minus create ts_ms per job.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.Conn.QueryRow(ctx, `
		SELECT countIf(event = 'create'), countIf(event = 'finish'), countIf(event = 'fail'),
		       ifNull(avgIf(data_size, event = 'create'), 0)
		FROM job_events FINAL`).Scan(&st.Created, &st.Finished, &st.Failed, &st.AvgDataSize)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	err = s.Conn.QueryRow(ctx, `
		SELECT ifNull(avg(d), 0), ifNull(quantile(0.99)(d), 0) FROM (
			SELECT job_id, toFloat64(maxIf(ts_ms, event != 'create')) - toFloat64(minIf(ts_ms, event = 'create')) AS d
			FROM job_events FINAL GROUP BY job_id HAVING countIf(event != 'create') > 0 AND countIf(event = 'create') > 0)`).
		Scan(&st.AvgDurationMS, &st.P99DurationMS)
	if err != nil {
		return st, fmt.Errorf("stats durations: %w", err)
	}
	rows, err := s.Conn.Query(ctx, `
		SELECT toString(toStartOfMinute(ts)) AS m, count() FROM job_events FINAL
		GROUP BY m ORDER BY m DESC LIMIT 60`)
	if err != nil {
		return st, fmt.Errorf("stats per minute: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b Bucket
		if err := rows.Scan(&b.Minute, &b.Events); err != nil {
			return st, err
		}
		st.EventsPerMinute = append(st.EventsPerMinute, b)
	}
	return st, rows.Err()
}
