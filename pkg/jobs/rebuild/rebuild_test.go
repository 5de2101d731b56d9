package rebuild_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstest"
	"github.com/jobflow/jobflow/pkg/jobs/rebuild"
)

func options(t *testing.T, p *jobstest.Pipeline) rebuild.Options {
	// The ClickHouse server is shared by tests: names of their own.
	suffix := fmt.Sprintf("_%d", time.Now().UnixNano())
	o := rebuild.Options{Where: p.Where, Fresh: rebuild.Fresh + suffix, Replaced: rebuild.Replaced + suffix}
	t.Cleanup(func() {
		for _, db := range []string{o.Fresh, o.Replaced} {
			_ = p.Events.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
		}
	})
	return o
}

func TestRebuildEqualThenDamagedThenSwapped(t *testing.T) {
	ctx := context.Background()
	p := jobstest.New(t)
	p.Run(400)
	p.Store()
	o := options(t, p)

	// A rebuild of faithful views is equal to them.
	var out bytes.Buffer
	d, err := rebuild.Jobs(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Equal() || d.Live != 400 || d.Rebuilt != 400 {
		t.Fatalf("jobs rebuild of faithful views: %+v\n%s", d, out.String())
	}
	e, err := rebuild.Events(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents := 400 + 400 - len(p.Created) // a create per job, a finish or fail per job not running
	if !e.Equal() || e.Live != wantEvents || e.Rebuilt != wantEvents {
		t.Fatalf("job_events rebuild of faithful views: %+v (want %d)\n%s", e, wantEvents, out.String())
	}
	if !strings.Contains(out.String(), "rows written") || !strings.Contains(out.String(), "lines written") {
		t.Fatalf("no progress output:\n%s", out.String())
	}

	// Damage: a checksum, a row deleted, a row the log never had; an
	// event the log never had, another event's sleep.
	var finished []uuid.UUID
	for _, r := range p.Rows {
		if r.Status == job.StatusFinish {
			finished = append(finished, r.ID)
		}
	}
	stranger := uuid.New()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"UPDATE jobs SET checksum = 'bad' WHERE id = $1", []any{finished[0]}},
		{"DELETE FROM jobs WHERE id = $1", []any{finished[1]}},
		{"INSERT INTO jobs (id, status, create_date, sleep, data_size) VALUES ($1, 'create', now(), 1, 1)", []any{stranger}},
	} {
		if _, err := p.Jobs.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	var sixth job.EventLine
	for _, l := range p.Lines {
		if l.JobID == finished[5] && l.Event == job.StatusCreate {
			sixth = l
		}
	}
	sixth.Sleep += 1000
	sixth.EventID = "changed" // a later insert with the same key replaces it in FINAL
	extra := job.EventLine{JobID: finished[4], Event: job.StatusFail, TS: time.Now().UTC(), EventID: "x"}
	if err := p.Events.Insert(ctx, []job.EventLine{extra, sixth}); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	d, err = rebuild.Jobs(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d.Differ, d.Missing, d.Extra) != fmt.Sprint([]string{finished[0].String()}, []string{finished[1].String()}, []string{stranger.String()}) {
		t.Fatalf("jobs rebuild of damaged table: %+v\n%s", d, out.String())
	}
	d.Print(&out, "jobs", 0)
	if !strings.Contains(out.String(), "DIFFERENT (1 missing, 1 only live, 1 different)") {
		t.Fatalf("report:\n%s", out.String())
	}
	e, err = rebuild.Events(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(e.Differ, e.Missing, e.Extra) != fmt.Sprint([]string{finished[5].String() + " create"}, []string(nil), []string{finished[4].String() + " fail"}) {
		t.Fatalf("job_events rebuild of damaged table: %+v\n%s", e, out.String())
	}

	// --swap puts the rebuilt tables in place: the views are the log's again.
	o.Swap = true
	if d, err = rebuild.Jobs(ctx, o, &out); err != nil || !d.Swapped {
		t.Fatalf("swap jobs: %v %+v\n%s", err, d, out.String())
	}
	if e, err = rebuild.Events(ctx, o, &out); err != nil || !e.Swapped {
		t.Fatalf("swap job_events: %v %+v\n%s", err, e, out.String())
	}
	o.Swap = false
	if d, err = rebuild.Jobs(ctx, o, &out); err != nil || !d.Equal() {
		t.Fatalf("jobs after the swap: %v %+v\n%s", err, d, out.String())
	}
	if e, err = rebuild.Events(ctx, o, &out); err != nil || !e.Equal() {
		t.Fatalf("job_events after the swap: %v %+v\n%s", err, e, out.String())
	}
	if rep, text, err := p.Check(); err != nil || !rep.OK() {
		t.Fatalf("verify jobs after the swap: %v\n%s", err, text)
	}
	// The damaged tables are kept where a swap puts them.
	var n int
	if err := p.Jobs.Pool.QueryRow(ctx, "SELECT count(*) FROM "+o.Replaced+".jobs WHERE checksum = 'bad'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("replaced jobs table: %v, %d bad rows", err, n)
	}
}
