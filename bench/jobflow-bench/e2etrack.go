package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tracker tells when jobs became queryable: their row finish in
// PostgreSQL and both their rows (create, finish) in ClickHouse.
//
// Every job is counted (doneCounts, for the capacity and to check that
// none was lost); every k-th job is a probe whose latency is measured: a
// loop asks both databases every probeEvery which of the probes still
// waiting are done, and a probe's latency is the start of the first poll
// that saw it done minus the time its POST was sent. So latencies are
// accurate to about probeEvery, and probes are sampled so that the polls'
// cost on the databases stays small (at most ~probeRate probes a second).
type tracker struct {
	pg *pgxpool.Pool
	ch driver.Conn

	mu      sync.Mutex
	every   int
	seen    int
	waiting map[uuid.UUID]*probe
	lat     []time.Duration
	ids     []uuid.UUID // some done jobs, for GET /info
}

type probe struct {
	submitted  time.Time
	inPG, inCH bool
}

const (
	probeEvery = 10 * time.Millisecond
	probeRate  = 200
	keepIDs    = 20000
)

func newTracker(ctx context.Context, pgURL, chAddr, chDB string) (*tracker, error) {
	pg, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	ch, err := clickhouseConn(chAddr, chDB)
	if err != nil {
		pg.Close()
		return nil, err
	}
	return &tracker{pg: pg, ch: ch, every: 1, waiting: map[uuid.UUID]*probe{}}, nil
}

func (t *tracker) Close() { t.pg.Close(); _ = t.ch.Close() }

// sample probes one job in every max(1, rate/probeRate) from now on and
// forgets the latencies measured so far.
func (t *tracker) sample(rate float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.every, t.seen, t.lat = max(1, int(rate/probeRate)), 0, nil
}

// accepted is called for every job the receiver answered.
func (t *tracker) accepted(id uuid.UUID, submitted time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen++
	if t.seen%t.every == 0 {
		t.waiting[id] = &probe{submitted: submitted}
	}
}

// run polls until ctx ends.
func (t *tracker) run(ctx context.Context) {
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.poll(ctx)
	}
}

func (t *tracker) poll(ctx context.Context) {
	at := time.Now()
	var pgIDs, chIDs []string
	t.mu.Lock()
	for id, p := range t.waiting {
		if !p.inPG {
			pgIDs = append(pgIDs, id.String())
		}
		if !p.inCH {
			chIDs = append(chIDs, id.String())
		}
	}
	t.mu.Unlock()
	inPG, inCH := t.finishedInPG(ctx, pgIDs), t.bothInCH(ctx, chIDs)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range inPG {
		if p := t.waiting[id]; p != nil {
			p.inPG = true
		}
	}
	for _, id := range inCH {
		if p := t.waiting[id]; p != nil {
			p.inCH = true
		}
	}
	for id, p := range t.waiting {
		if p.inPG && p.inCH {
			t.lat = append(t.lat, at.Sub(p.submitted))
			if len(t.ids) < keepIDs {
				t.ids = append(t.ids, id)
			}
			delete(t.waiting, id)
		}
	}
}

func (t *tracker) finishedInPG(ctx context.Context, ids []string) []uuid.UUID {
	if len(ids) == 0 {
		return nil
	}
	rows, err := t.pg.Query(ctx, "SELECT id FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'finish'", ids)
	if err != nil {
		return nil // the table may not exist yet
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if rows.Scan(&id) == nil {
			out = append(out, id)
		}
	}
	return out
}

func (t *tracker) bothInCH(ctx context.Context, ids []string) []uuid.UUID {
	if len(ids) == 0 {
		return nil
	}
	// The ids are UUIDs this bench parsed: safe to write into the query.
	q := "SELECT toString(job_id) FROM job_events WHERE job_id IN (toUUID('" + strings.Join(ids, "'), toUUID('") +
		"')) GROUP BY job_id HAVING uniqExact(event) >= 2"
	rows, err := t.ch.Query(ctx, q)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var s string
		if rows.Scan(&s) == nil {
			if id, err := uuid.Parse(s); err == nil {
				out = append(out, id)
			}
		}
	}
	return out
}

// waitProbes waits until every probe is done (or max passed) and returns
// the sorted latencies and how many probes were still waiting.
func (t *tracker) waitProbes(ctx context.Context, max time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(max)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		t.mu.Lock()
		n := len(t.waiting)
		t.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lat := slices.Clone(t.lat)
	slices.Sort(lat)
	lost := len(t.waiting)
	clear(t.waiting)
	return lat, lost
}

// doneCounts are the jobs finish in PostgreSQL and the distinct
// (job, event) rows in ClickHouse.
func (t *tracker) doneCounts(ctx context.Context) (pg, ch int) {
	var n int64
	if t.pg.QueryRow(ctx, "SELECT count(*) FROM jobs WHERE status = 'finish'").Scan(&n) == nil {
		pg = int(n)
	}
	var u uint64
	if t.ch.QueryRow(ctx, "SELECT uniqExact(job_id, event) FROM job_events").Scan(&u) == nil {
		ch = int(u)
	}
	return pg, ch
}

// waitAllDone waits until jobs jobs are finish in PostgreSQL with both
// rows in ClickHouse; it returns when that was first seen (polled every
// 100 ms) or an error after max.
func (t *tracker) waitAllDone(ctx context.Context, jobs int, max time.Duration) (time.Time, error) {
	deadline := time.Now().Add(max)
	for {
		at := time.Now()
		pg, ch := t.doneCounts(ctx)
		if pg >= jobs && ch >= 2*jobs {
			return at, nil
		}
		if at.After(deadline) || ctx.Err() != nil {
			return at, fmt.Errorf("after %s: %d of %d jobs finish in PostgreSQL, %d of %d rows in ClickHouse", max, pg, jobs, ch, 2*jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// someIDs are done jobs' ids (for GET /info).
func (t *tracker) someIDs() []uuid.UUID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.ids)
}
