package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
)

// freshPostgres (re)creates database name on the server of base and returns its URL.
func freshPostgres(ctx context.Context, base, name string) (string, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	q := ""
	if i := strings.Index(base, "?"); i >= 0 {
		base, q = base[:i], base[i:]
	}
	return base[:strings.LastIndex(base, "/")+1] + name + q, nil
}

// clickhouseConn opens a connection to database db.
func clickhouseConn(addr, db string) (driver.Conn, error) {
	c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"},
		DialTimeout: 5 * time.Second, MaxOpenConns: 4})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", addr, err)
	}
	return c, nil
}

// freshClickHouse (re)creates database name. The tables of an earlier run
// are moved to the database chTrash rather than dropped: on this machine's
// ext4 (no journal) the inode allocator skips inodes freed in the last
// 60-360 s one by one, so dropping tens of thousands of part files made
// every file ClickHouse created during the next run cost milliseconds of
// kernel time (perf: __ext4_new_inode → recently_deleted was 63 % of
// clickhouse-server's CPU). dropTrash drops them once the measuring is over.
func freshClickHouse(ctx context.Context, addr, name string) error {
	c, err := clickhouseConn(addr, "default")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+chTrash); err != nil {
		return fmt.Errorf("create clickhouse database %s: %w", chTrash, err)
	}
	rows, err := c.Query(ctx, "SELECT name FROM system.tables WHERE database = ?", name)
	if err != nil {
		return fmt.Errorf("tables of %s: %w", name, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	for _, t := range tables {
		trashed++
		to := fmt.Sprintf("%s.%s_%s_%d", chTrash, name, strings.TrimPrefix(t, "."), trashed)
		if err := c.Exec(ctx, fmt.Sprintf("RENAME TABLE %s.`%s` TO %s", name, t, to)); err != nil {
			if err := c.Exec(ctx, fmt.Sprintf("DROP TABLE %s.`%s`", name, t)); err != nil {
				return fmt.Errorf("drop clickhouse table %s.%s: %w", name, t, err)
			}
		}
	}
	if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("drop clickhouse database %s: %w", name, err)
	}
	if err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create clickhouse database %s: %w", name, err)
	}
	return nil
}

// chTrash holds the tables of earlier runs until dropTrash.
const chTrash = "bench_trash"

var trashed int

// dropTrash drops the tables of earlier runs (see freshClickHouse).
func dropTrash(addr string) error {
	c, err := clickhouseConn(addr, "default")
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chTrash)
}

// rawCopyFrom writes rows into a fresh jobs table with one CopyFrom: the
// fastest PostgreSQL takes rows on this machine.
func rawCopyFrom(ctx context.Context, url string, rows []job.Row) (time.Duration, error) {
	s, err := jobstore.Open(ctx, url)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		return []any{r.ID, string(r.Status), r.CreateDate, r.FinishDate, r.Sleep, r.DataSize, r.Checksum, nil}, nil
	})
	start := time.Now()
	n, err := s.Pool.CopyFrom(ctx, pgx.Identifier{"jobs"},
		[]string{"id", "status", "create_date", "finish_date", "sleep", "data_size", "checksum", "error"}, src)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	if int(n) != len(rows) {
		return 0, fmt.Errorf("copy wrote %d of %d rows", n, len(rows))
	}
	return took, nil
}

// rawPrepareBatch writes lines into a fresh job_events table in batches of
// batchSize, one PrepareBatch each: the fastest ClickHouse takes rows here.
func rawPrepareBatch(ctx context.Context, addr, db string, lines []job.EventLine, batchSize int) (time.Duration, error) {
	s, err := eventstore.Open(ctx, addr, db)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	start := time.Now()
	for lo := 0; lo < len(lines); lo += batchSize {
		if err := s.Insert(ctx, lines[lo:min(lo+batchSize, len(lines))]); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// counter reads how many rows a table holds (an error counts as 0: the
// sink may not have created it yet).
type counter func(ctx context.Context) int

func pgCounter(ctx context.Context, url string) (counter, func(), error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("connect postgres: %w", err)
	}
	return func(ctx context.Context) int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM jobs").Scan(&n); err != nil {
			return 0
		}
		return n
	}, func() { _ = conn.Close(context.Background()) }, nil
}

func chCounter(addr, db, table string) (counter, func(), error) {
	c, err := clickhouseConn(addr, db)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context) int {
		var n uint64
		if err := c.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n); err != nil {
			return 0
		}
		return int(n)
	}, func() { _ = c.Close() }, nil
}

// drain is how a run took its rows: polled every 25 ms, from the first
// poll that saw rows to the one that saw want of them (or the deadline).
type drain struct {
	Rows    int           // rows taken between first and last poll
	Took    time.Duration // between those polls
	Reached int           // rows seen at the end
}

// measureDrain polls count every poll until it reaches want or max passed
// after the first rows appeared (or wait passed with no rows at all).
func measureDrain(ctx context.Context, count counter, poll time.Duration, want int, wait, max time.Duration) (drain, error) {
	start := time.Now()
	var first time.Time
	firstN := 0
	for {
		n := count(ctx)
		now := time.Now()
		if n > 0 && first.IsZero() {
			first, firstN = now, n
		}
		if n >= want || (!first.IsZero() && now.Sub(first) >= max) {
			if first.Equal(now) { // all rows came between two polls
				return drain{Rows: n, Took: poll, Reached: n}, nil
			}
			return drain{Rows: n - firstN, Took: now.Sub(first), Reached: n}, nil
		}
		if first.IsZero() && now.Sub(start) > wait {
			return drain{}, fmt.Errorf("no rows after %s", wait)
		}
		select {
		case <-ctx.Done():
			return drain{}, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// waitCount waits until count reaches want.
func waitCount(ctx context.Context, count counter, want int, max time.Duration) (int, error) {
	deadline := time.Now().Add(max)
	for {
		n := count(ctx)
		if n >= want {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("%d of %d rows after %s", n, want, max)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
