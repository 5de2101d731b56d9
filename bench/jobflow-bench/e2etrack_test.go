package main

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
)

// TestTrackerCountsAJobDoneOnlyWhenQueryableInBoth writes jobs into the
// test databases the way the sinks do: a probe is done only once its row
// is finish in PostgreSQL and both its rows are in ClickHouse, and its
// latency counts from its submit time.
func TestTrackerCountsAJobDoneOnlyWhenQueryableInBoth(t *testing.T) {
	ctx := context.Background()
	pgURL := testenv.PostgresDB(t)
	chAddr, chDB := testenv.ClickHouseDB(t)
	js, err := jobstore.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer js.Close()
	es, err := eventstore.Open(ctx, chAddr, chDB)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	tr, err := newTracker(ctx, pgURL, chAddr, chDB)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	go tr.run(tctx)

	tr.sample(1) // every job a probe
	done, pgOnly, chOnly := uuid.New(), uuid.New(), uuid.New()
	submitted := time.Now().Add(-time.Second)
	for _, id := range []uuid.UUID{done, pgOnly, chOnly} {
		tr.accepted(id, submitted)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	row := func(id uuid.UUID, st job.Status) job.Row {
		r := job.Row{ID: id, Status: st, CreateDate: now, Sleep: 0, DataSize: 64}
		if st == job.StatusFinish {
			r.FinishDate, r.Checksum = &now, "x"
		}
		return r
	}
	line := func(id uuid.UUID, st job.Status) job.EventLine {
		return job.EventLine{JobID: id, Event: st, TS: now, DataSize: 64, EventID: uuid.NewString()}
	}
	// pgOnly: finish in PostgreSQL, only its create row in ClickHouse;
	// chOnly: both rows in ClickHouse, still create in PostgreSQL.
	if err := js.Upsert(ctx, []job.Row{row(done, job.StatusFinish), row(pgOnly, job.StatusFinish), row(chOnly, job.StatusCreate)}); err != nil {
		t.Fatal(err)
	}
	if err := es.Insert(ctx, []job.EventLine{line(done, job.StatusCreate), line(done, job.StatusFinish),
		line(pgOnly, job.StatusCreate), line(chOnly, job.StatusCreate), line(chOnly, job.StatusFinish)}); err != nil {
		t.Fatal(err)
	}

	lat, lost, where := tr.waitProbes(ctx, 3*time.Second)
	if len(lat) != 1 || lost != 2 {
		t.Fatalf("%d probes done, %d waiting; want 1 and 2 (%s)", len(lat), lost, where)
	}
	if lat[0] < time.Second || lat[0] > time.Minute {
		t.Errorf("latency %s, want from the submit time a second ago", lat[0])
	}
	if ids := tr.someIDs(); len(ids) != 1 || ids[0] != done {
		t.Errorf("known done jobs %v, want only %s", ids, done)
	}
	pg, ch := tr.doneCounts(ctx)
	if pg != 2 || ch != 5 {
		t.Errorf("done counts: %d finish in PostgreSQL, %d distinct rows in ClickHouse; want 2 and 5", pg, ch)
	}
	if _, err := tr.waitAllDone(ctx, 3, 500*time.Millisecond); err == nil {
		t.Error("waitAllDone(3) returned, but only one job is queryable in both")
	}
	// The counts, not the ids, decide: each job adds at most 1 to the first
	// and 2 to the second, so 2 finish and 5 ≥ 4 rows are "2 jobs done".
	if _, err := tr.waitAllDone(ctx, 2, 5*time.Second); err != nil {
		t.Errorf("waitAllDone(2): %v", err)
	}
}
