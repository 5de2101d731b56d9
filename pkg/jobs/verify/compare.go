package verify

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/pkg/jobs/job"
)

// Scope is which jobs of the log a comparison checks.
type Scope int

const (
	// Finished checks the jobs finished (or failed) in the log: the ones
	// whose views must be complete; jobs still running may lag.
	Finished Scope = iota
	// All checks every job of the log, and reports jobs in the views that
	// the log does not have (a rebuild's comparison).
	All
)

// Tables name the views compared: the jobs table (schema-qualified or
// not) and the job_events table (database-qualified or not).
type Tables struct {
	Jobs   string // "" for jobs
	Events string // "" for job_events
}

// Drift is one job whose views differ from the log.
type Drift struct {
	JobID uuid.UUID
	What  string
}

// Report of a comparison.
type Report struct {
	Checked   int // jobs of the log checked
	Skipped   int // jobs of the log not in scope (still running)
	Drifts    []Drift
	ExtraRows int // rows in the jobs table the log does not have (All only)
	ExtraJobs int // jobs in job_events the log does not have (All only)
}

// OK reports whether no drift was found.
func (r Report) OK() bool { return len(r.Drifts) == 0 && r.ExtraRows == 0 && r.ExtraJobs == 0 }

// Print writes the report, at most limit drift lines (0: all).
func (r Report) Print(out io.Writer, limit int) {
	for i, d := range r.Drifts {
		if limit > 0 && i == limit {
			fmt.Fprintf(out, "... and %d more\n", len(r.Drifts)-limit)
			break
		}
		fmt.Fprintf(out, "drift: job %s: %s\n", d.JobID, d.What)
	}
	if r.ExtraRows > 0 || r.ExtraJobs > 0 {
		fmt.Fprintf(out, "drift: %d jobs rows and %d jobs' events not in the log\n", r.ExtraRows, r.ExtraJobs)
	}
	fmt.Fprintf(out, "jobs checked: %d (not finished, skipped: %d), drifted: %d\n", r.Checked, r.Skipped, len(r.Drifts))
}

// Compare checks the views against the log: every job in scope has its
// row in the jobs table with the log's status, checksum and error, and
// exactly the log's events in job_events (read with FINAL, as queries read it).
func Compare(ctx context.Context, l *Log, pg *pgxpool.Pool, ch driver.Conn, t Tables, scope Scope) (Report, error) {
	if t.Jobs == "" {
		t.Jobs = "jobs"
	}
	if t.Events == "" {
		t.Events = "job_events"
	}
	var rep Report
	rows, err := readRows(ctx, pg, t.Jobs)
	if err != nil {
		return rep, err
	}
	events, err := readEvents(ctx, ch, t.Events)
	if err != nil {
		return rep, err
	}
	ids := make([]uuid.UUID, 0, len(l.Rows))
	for id := range l.Rows {
		ids = append(ids, id)
	}
	if scope == All {
		for id := range l.Lines {
			if _, ok := l.Rows[id]; !ok {
				ids = append(ids, id)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		want, inRows := l.Rows[id]
		if scope == Finished && want.Status.Rank() < job.StatusFinish.Rank() {
			rep.Skipped++
			continue
		}
		rep.Checked++
		var what []string
		got, ok := rows[id]
		switch {
		case !inRows && ok:
			what = append(what, "jobs row not in the log")
		case inRows && !ok:
			what = append(what, "no row in "+t.Jobs)
		case inRows:
			if got.status != string(want.Status) {
				what = append(what, fmt.Sprintf("status %q, the log says %q", got.status, want.Status))
			}
			if got.checksum != want.Checksum {
				what = append(what, fmt.Sprintf("checksum %q, the log says %q", got.checksum, want.Checksum))
			}
			if got.errText != want.Error {
				what = append(what, fmt.Sprintf("error %q, the log says %q", got.errText, want.Error))
			}
		}
		if d := diffEvents(l.Lines[id], events[id]); d != "" {
			what = append(what, d)
		}
		if len(what) > 0 {
			rep.Drifts = append(rep.Drifts, Drift{JobID: id, What: strings.Join(what, "; ")})
		}
	}
	if scope == All {
		for id := range rows {
			if _, ok := l.Rows[id]; !ok {
				rep.ExtraRows++
			}
		}
		for id := range events {
			if _, ok := l.Lines[id]; !ok {
				rep.ExtraJobs++
			}
		}
	}
	return rep, nil
}

// diffEvents says how a job's stored events differ from the log's lines.
func diffEvents(want map[job.Status]job.EventLine, got map[string]storedEvent) string {
	var d []string
	for ev, line := range want {
		g, ok := got[string(ev)]
		switch {
		case !ok:
			d = append(d, "event "+string(ev)+" missing in ClickHouse")
		case g.rows != 1:
			d = append(d, fmt.Sprintf("event %s %d times in ClickHouse", ev, g.rows))
		case g.tsMS != uint64(line.TS.UnixMilli()) || g.eventID != line.EventID:
			d = append(d, fmt.Sprintf("event %s differs in ClickHouse (ts_ms %d, event_id %s; the log: %d, %s)",
				ev, g.tsMS, g.eventID, line.TS.UnixMilli(), line.EventID))
		}
	}
	for ev := range got {
		if _, ok := want[job.Status(ev)]; !ok {
			d = append(d, "event "+ev+" in ClickHouse is not in the log")
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

type storedRow struct{ status, checksum, errText string }

func readRows(ctx context.Context, pg *pgxpool.Pool, table string) (map[uuid.UUID]storedRow, error) {
	rs, err := pg.Query(ctx, "SELECT id, status, coalesce(checksum, ''), coalesce(error, '') FROM "+table)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rs.Close()
	out := map[uuid.UUID]storedRow{}
	for rs.Next() {
		var id uuid.UUID
		var r storedRow
		if err := rs.Scan(&id, &r.status, &r.checksum, &r.errText); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		out[id] = r
	}
	return out, rs.Err()
}

type storedEvent struct {
	rows    uint64
	tsMS    uint64
	eventID string
}

// readEvents reads job_events as queries do (FINAL); toString reads both
// a UUID job_id and an older jobflow's String one.
func readEvents(ctx context.Context, ch driver.Conn, table string) (map[uuid.UUID]map[string]storedEvent, error) {
	rs, err := ch.Query(ctx, "SELECT toString(job_id), event, count(), any(ts_ms), any(event_id) FROM "+table+" FINAL GROUP BY job_id, event")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rs.Close()
	out := map[uuid.UUID]map[string]storedEvent{}
	for rs.Next() {
		var idText, ev string
		var e storedEvent
		if err := rs.Scan(&idText, &ev, &e.rows, &e.tsMS, &e.eventID); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		id, err := uuid.Parse(idText)
		if err != nil {
			return nil, fmt.Errorf("read %s: job_id %q: %w", table, idText, err)
		}
		if out[id] == nil {
			out[id] = map[string]storedEvent{}
		}
		out[id][ev] = e
	}
	return out, rs.Err()
}
