package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/eventstore"
	"github.com/jobflow/jobflow/pkg/job"
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
