package eventstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
)

func TestInsertDedupesRedeliveredBatchesAndStats(t *testing.T) {
	addr, db := testenv.ClickHouseDB(t)
	ctx := context.Background()
	s, err := eventstore.Open(ctx, addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	var batch []job.EventLine
	ids := make([]uuid.UUID, 50)
	for i := range ids {
		ids[i] = uuid.New()
		batch = append(batch,
			job.EventLine{JobID: ids[i], Event: job.StatusCreate, TS: base, Sleep: 100, DataSize: 10, EventID: "c" + ids[i].String()},
			job.EventLine{JobID: ids[i], Event: job.StatusFinish, TS: base.Add(100 * time.Millisecond), Sleep: 100, DataSize: 10, EventID: "f" + ids[i].String()})
	}
	for range 3 { // the same batch delivered three times
		if err := s.Insert(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids[:5] {
		evs, err := s.EventsOf(ctx, id.String())
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0] != "create" || evs[1] != "finish" {
			t.Fatalf("job %s: events %v, want [create finish]", id, evs)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Created != 50 || st.Finished != 50 || st.AvgDurationMS != 100 {
		t.Fatalf("stats = %+v", st)
	}
}

// A table made by an older jobflow, with job_id as String, keeps working:
// rows are written and read by the id's text.
func TestATableWithStringJobIDsKeepsWorking(t *testing.T) {
	addr, db := testenv.ClickHouseDB(t)
	ctx := context.Background()
	old := strings.Replace(eventstore.Schema, "job_id    UUID,", "job_id    String,", 1)
	if old == eventstore.Schema {
		t.Fatal("schema has no UUID job_id to replace")
	}
	s, err := eventstore.Open(ctx, addr, db) // makes the new table
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TABLE job_events", old} {
		if err := s.Conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if s, err = eventstore.Open(ctx, addr, db); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var typ string
	if err := s.Conn.QueryRow(ctx, "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'job_events' AND name = 'job_id'").Scan(&typ); err != nil || typ != "String" {
		t.Fatalf("job_id type %q (%v), want the old String kept", typ, err)
	}
	id := uuid.New()
	at := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	if err := s.Insert(ctx, []job.EventLine{{JobID: id, Event: job.StatusCreate, TS: at, EventID: "c"},
		{JobID: id, Event: job.StatusFinish, TS: at.Add(time.Second), EventID: "f"}}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.EventsOf(ctx, id.String())
	if err != nil || len(evs) != 2 || evs[0] != "create" || evs[1] != "finish" {
		t.Fatalf("events %v (%v), want [create finish]", evs, err)
	}
	if st, err := s.Stats(ctx); err != nil || st.Created != 1 || st.Finished != 1 {
		t.Fatalf("stats %+v (%v)", st, err)
	}
}
