package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Jobs is the jobs pipeline's load and accounting: each job is a
// CloudEvent POSTed to the receiver, resent with the same id until it is
// accepted (200 with the job's id): a resent event is the same job.
type Jobs struct {
	Receiver string // http://127.0.0.1:<port>
	Prefix   string // ce-id prefix, unique per run
	c        *client
	next     atomic.Int64
	mu       sync.Mutex
	accepted map[string]time.Time // job id -> when accepted
	refused  int                  // given up: not accepted
	retried  int                  // requests that needed more than one attempt
	refusals *refusals
}

// NewJobs is the jobs load on receiver.
func NewJobs(receiver, prefix string, giveUp time.Duration) *Jobs {
	return &Jobs{Receiver: receiver, Prefix: prefix, c: newClient(giveUp), accepted: map[string]time.Time{}}
}

// Submit sends one job until it is accepted; it returns its id ("" if
// refused).
func (j *Jobs) Submit(ctx context.Context) string {
	n := j.next.Add(1)
	hdr := map[string]string{"ce-specversion": "1.0", "ce-type": "dev.jobflow.job.requested",
		"ce-source": "/chaos", "ce-id": fmt.Sprintf("%s-%d", j.Prefix, n)}
	o := j.c.do(ctx, "POST", j.Receiver+"/", []byte(`{"sleep":10,"data_size":256}`), hdr, func(s int) bool { return s == 200 })
	var created struct {
		ID string `json:"id"`
	}
	ok := o.status == 200 && json.Unmarshal(o.body, &created) == nil && created.ID != ""
	j.mu.Lock()
	defer j.mu.Unlock()
	if o.attempts > 1 {
		j.retried++
	}
	if !ok {
		if ctx.Err() == nil {
			j.refused++
			j.refusals.add("job "+hdr["ce-id"], o)
		}
		return ""
	}
	j.accepted[created.ID] = time.Now()
	return created.ID
}

// JobTally is the jobs' accounting.
type JobTally struct {
	Accepted, Refused, Retried int
	Lost                       int // accepted, not finished in PostgreSQL or not exactly create+finish in ClickHouse
	Doubled                    int // accepted, with more events than create+finish in ClickHouse
	Unasked                    int // rows in jobs no accepted request made (a refused request may have made one)
	RawDuplicates              uint64
	Examples                   []string
}

// Tally checks every accepted job: finished in PostgreSQL, and exactly
// its create and finish events in ClickHouse (read with FINAL, as the
// queries read it).
func (j *Jobs) Tally(ctx context.Context, pg *pgxpool.Pool, ch driver.Conn) (JobTally, error) {
	j.mu.Lock()
	t := JobTally{Accepted: len(j.accepted), Refused: j.refused, Retried: j.retried}
	ids := make([]string, 0, len(j.accepted))
	for id := range j.accepted {
		ids = append(ids, id)
	}
	j.mu.Unlock()
	status := map[string]string{}
	rows, err := pg.Query(ctx, `SELECT id::text, status FROM jobs`)
	if err != nil {
		return t, fmt.Errorf("jobs: %w", err)
	}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return t, fmt.Errorf("jobs: %w", err)
		}
		status[id] = st
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("jobs: %w", err)
	}
	events := map[string][]string{}
	crows, err := ch.Query(ctx, `SELECT toString(job_id), groupArray(event) FROM job_events FINAL GROUP BY job_id`)
	if err != nil {
		return t, fmt.Errorf("job_events: %w", err)
	}
	for crows.Next() {
		var id string
		var evs []string
		if err := crows.Scan(&id, &evs); err != nil {
			return t, fmt.Errorf("job_events: %w", err)
		}
		events[id] = evs
	}
	_ = crows.Close()
	var raw, final uint64
	if err := ch.QueryRow(ctx, `SELECT count() FROM job_events`).Scan(&raw); err == nil {
		_ = ch.QueryRow(ctx, `SELECT count() FROM job_events FINAL`).Scan(&final)
		t.RawDuplicates = raw - final
	}
	for _, id := range ids {
		evs := events[id]
		switch {
		case len(evs) > 2:
			t.Doubled++
			t.example(fmt.Sprintf("job %s: events %v", id, evs))
		case status[id] != "finish" || len(evs) != 2 || !hasBoth(evs):
			t.Lost++
			t.example(fmt.Sprintf("job %s: postgres %q, clickhouse %v", id, status[id], evs))
		}
	}
	t.Unasked = max(0, len(status)-len(ids))
	return t, nil
}

// Settled reports whether every accepted job is finished with both its
// events stored (Tally would find nothing lost).
func (j *Jobs) Settled(ctx context.Context, pg *pgxpool.Pool, ch driver.Conn) bool {
	t, err := j.Tally(ctx, pg, ch)
	return err == nil && t.Lost == 0 && t.Doubled == 0
}

func hasBoth(evs []string) bool {
	var c, f bool
	for _, e := range evs {
		c = c || e == "create"
		f = f || e == "finish"
	}
	return c && f
}

func (t *JobTally) example(s string) {
	if len(t.Examples) < 5 {
		t.Examples = append(t.Examples, s)
	}
}

// JobFinished reports whether job id is finished in PostgreSQL.
func JobFinished(ctx context.Context, pg *pgxpool.Pool, id string) bool {
	var st string
	err := pg.QueryRow(ctx, `SELECT status FROM jobs WHERE id = $1`, id).Scan(&st)
	return err == nil && st == "finish"
}
