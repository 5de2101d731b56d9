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
// loop per database asks it every probeEvery (or as soon as its last
// answer came) which of the probes still waiting it holds, and a probe's
// latency is the start of the later of the two polls that first saw it
// minus the time its POST was sent. So latencies are accurate to a poll's
// interval plus its time (both reported), and probes are sampled so that
// the polls' cost on the databases stays small (at most ~probeRate probes
// a second).
type tracker struct {
	pg *pgxpool.Pool
	ch driver.Conn

	mu      sync.Mutex
	every   int
	seen    int
	waiting map[uuid.UUID]*probe
	lat     []time.Duration // until both: the latency reported
	pgLat   []time.Duration // until finish in PostgreSQL
	chLat   []time.Duration // until both rows in ClickHouse
	// the polls' number and time, for their resolution
	pgPolls, chPolls     int
	pgPolling, chPolling time.Duration
	ids                  []uuid.UUID // some done jobs, for GET /info
}

type probe struct {
	submitted  time.Time
	pgAt, chAt time.Time // the start of the poll that first saw it there
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
	t.every, t.seen, t.lat, t.pgLat, t.chLat = max(1, int(rate/probeRate)), 0, nil, nil, nil
	t.pgPolls, t.chPolls, t.pgPolling, t.chPolling = 0, 0, 0, 0
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

// run polls until ctx ends: PostgreSQL and ClickHouse each in their own
// loop, so that a slow answer of one does not delay what the other shows.
func (t *tracker) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, inPG := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(probeEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				t.poll(ctx, inPG)
			}
		}()
	}
	wg.Wait()
}

// poll asks one database which waiting probes it holds; a probe seen in
// both is done at the later of the two polls' start times.
func (t *tracker) poll(ctx context.Context, inPG bool) {
	at := time.Now()
	var ids []string
	t.mu.Lock()
	for id, p := range t.waiting {
		if (inPG && p.pgAt.IsZero()) || (!inPG && p.chAt.IsZero()) {
			ids = append(ids, id.String())
		}
	}
	t.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	var found []uuid.UUID
	if inPG {
		found = t.finishedInPG(ctx, ids)
	} else {
		found = t.bothInCH(ctx, ids)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if inPG {
		t.pgPolls, t.pgPolling = t.pgPolls+1, t.pgPolling+time.Since(at)
	} else {
		t.chPolls, t.chPolling = t.chPolls+1, t.chPolling+time.Since(at)
	}
	for _, id := range found {
		p := t.waiting[id]
		if p == nil {
			continue
		}
		if inPG {
			p.pgAt = at
			t.pgLat = append(t.pgLat, at.Sub(p.submitted))
		} else {
			p.chAt = at
			t.chLat = append(t.chLat, at.Sub(p.submitted))
		}
		if !p.pgAt.IsZero() && !p.chAt.IsZero() {
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
	// Plain literals: IN (toUUID('...'), ...) took four times as long.
	q := "SELECT toString(job_id) FROM job_events WHERE job_id IN ('" + strings.Join(ids, "', '") +
		"') GROUP BY job_id HAVING uniqExact(event) >= 2"
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
// the sorted latencies, how many probes were still waiting and where the
// time went (each database alone, the polls' mean time).
func (t *tracker) waitProbes(ctx context.Context, limit time.Duration) ([]time.Duration, int, string) {
	deadline := time.Now().Add(limit)
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
	sorted := func(d []time.Duration) []time.Duration { d = slices.Clone(d); slices.Sort(d); return d }
	lat, pg, ch := sorted(t.lat), sorted(t.pgLat), sorted(t.chLat)
	lost := len(t.waiting)
	clear(t.waiting)
	mean := func(d time.Duration, n int) string { return ms(d / time.Duration(max(n, 1))) }
	where := fmt.Sprintf("finish in PostgreSQL p50 %s p99 %s (a poll took %s on average), both rows in ClickHouse p50 %s p99 %s (a poll %s)",
		ms(quantile(pg, 0.5)), ms(quantile(pg, 0.99)), mean(t.pgPolling, t.pgPolls), ms(quantile(ch, 0.5)), ms(quantile(ch, 0.99)), mean(t.chPolling, t.chPolls))
	return lat, lost, where
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
