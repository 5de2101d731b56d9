package verify_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstest"
	"github.com/jobflow/jobflow/pkg/jobs/verify"
)

func TestVerifyJobsNoDriftThenDrift(t *testing.T) {
	p := jobstest.New(t)
	const n = 300
	p.Run(n)
	p.Store()
	running := len(p.Created)

	rep, out, err := p.Check()
	if err != nil {
		t.Fatalf("verify of a faithful pipeline: %v\n%s", err, out)
	}
	if rep.Checked != n-running || rep.Skipped != running {
		t.Fatalf("checked %d, skipped %d; want %d and %d\n%s", rep.Checked, rep.Skipped, n-running, running, out)
	}

	// Damage the views: a checksum changed, a row gone, a status moved
	// back, an event gone, an event the log never had.
	ctx := context.Background()
	finished := p.Rows[len(p.Rows)-1] // the last job's final row
	if finished.Status != job.StatusFinish {
		t.Fatalf("last row is %s", finished.Status)
	}
	var victims []uuid.UUID
	for _, r := range p.Rows {
		if r.Status == job.StatusFinish && r.ID != finished.ID {
			victims = append(victims, r.ID)
		}
	}
	mustExec := func(q string, args ...any) {
		if _, err := p.Jobs.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec("UPDATE jobs SET checksum = 'bad' WHERE id = $1", victims[0])
	mustExec("DELETE FROM jobs WHERE id = $1", victims[1])
	mustExec("UPDATE jobs SET status = 'create' WHERE id = $1", victims[2])
	// ClickHouse: job_events rebuilt without one job's finish line, plus a
	// fail line for another job.
	if err := p.Events.Conn.Exec(ctx, "CREATE TABLE job_events_keep AS job_events"); err != nil {
		t.Fatal(err)
	}
	if err := p.Events.Conn.Exec(ctx, fmt.Sprintf("INSERT INTO job_events_keep SELECT * FROM job_events WHERE NOT (job_id = toUUID('%s') AND event = 'finish')", victims[3])); err != nil {
		t.Fatal(err)
	}
	if err := p.Events.Conn.Exec(ctx, "DROP TABLE job_events"); err != nil {
		t.Fatal(err)
	}
	if err := p.Events.Conn.Exec(ctx, "RENAME TABLE job_events_keep TO job_events"); err != nil {
		t.Fatal(err)
	}
	extra := job.EventLine{JobID: victims[4], Event: job.StatusFail, TS: time.Now().UTC(), EventID: "x"}
	if err := p.Events.Insert(ctx, []job.EventLine{extra}); err != nil {
		t.Fatal(err)
	}

	rep, out, err = p.Check()
	if !errors.Is(err, verify.ErrDrift) {
		t.Fatalf("verify of damaged views: err %v, want ErrDrift\n%s", err, out)
	}
	want := map[uuid.UUID]string{
		victims[0]: `checksum "bad"`,
		victims[1]: "no row in jobs",
		victims[2]: `status "create", the log says "finish"`,
		victims[3]: "event finish missing in ClickHouse",
		victims[4]: "event fail in ClickHouse is not in the log",
	}
	if len(rep.Drifts) != len(want) {
		t.Fatalf("%d drifts, want %d\n%s", len(rep.Drifts), len(want), out)
	}
	for _, d := range rep.Drifts {
		if !strings.Contains(d.What, want[d.JobID]) || want[d.JobID] == "" {
			t.Errorf("job %s: drift %q, want %q", d.JobID, d.What, want[d.JobID])
		}
		if !strings.Contains(out, d.JobID.String()) {
			t.Errorf("report does not name %s:\n%s", d.JobID, out)
		}
	}
}
