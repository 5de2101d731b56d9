package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
)

// Concurrent GET /info requests share queries, and each still gets its own
// job's answer (or unknown).
func TestInfoReadsAreCoalescedAndEachGetsItsJob(t *testing.T) {
	ctx := context.Background()
	jobs, err := jobstore.Open(ctx, testenv.PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(jobs.Close)
	known := map[uuid.UUID]string{}
	var rows []job.Row
	for i := 0; i < 100; i++ {
		id := uuid.New()
		known[id] = fmt.Sprintf("sum-%d", i)
		at := time.Now().UTC()
		rows = append(rows, job.Row{ID: id, Status: job.StatusFinish, CreateDate: at, FinishDate: &at, DataSize: 1, Checksum: known[id]})
	}
	if err := jobs.Upsert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	ids := make([]uuid.UUID, 0, 150)
	for id := range known {
		ids = append(ids, id)
	}
	for i := 0; i < 50; i++ {
		ids = append(ids, uuid.New()) // never seen
	}

	var largest atomic.Int64
	b := newLookups(batch.Config{MaxItems: 256, Flushers: 1, Timeout: 10 * time.Second}, jobs)
	b.OnFlush(func(size int, _ time.Duration, err error) {
		if err != nil {
			t.Errorf("lookup: %v", err)
		}
		if int64(size) > largest.Load() {
			largest.Store(int64(size))
		}
	})
	defer b.Start()()
	f := NewFunction()
	f.jobs, f.lookups = jobs, b

	// Rounds of all requests at once until one query answered several (on
	// an idle machine the first round does; a round cannot prove it).
	for round := 0; round < 10 && largest.Load() < 2; round++ {
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := httptest.NewRecorder()
				f.Handle(w, httptest.NewRequest("GET", "/info/"+id.String(), nil))
				var got Info
				if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != 200 || err != nil {
					t.Errorf("%s: %d %s", id, w.Code, w.Body)
					return
				}
				sum, ok := known[id]
				switch {
				case got.ID != id.String():
					t.Errorf("asked %s, answered %s", id, got.ID)
				case ok && (got.Status != job.StatusFinish || got.Checksum != sum):
					t.Errorf("%s: %+v, want finish with %s", id, got, sum)
				case !ok && got.Status != job.StatusUnknown:
					t.Errorf("%s never seen: %+v", id, got)
				}
			}()
		}
		wg.Wait()
	}
	if largest.Load() < 2 {
		t.Fatalf("no query answered more than one request in 10 rounds of %d at once", len(ids))
	}
}
