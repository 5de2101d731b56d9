package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/engine"
)

// TestCrashesAndRestartLoseNothing sends jobs while function processes are
// killed mid-delivery and the whole engine is restarted mid-stream: every
// job ends finished in PostgreSQL exactly once, with exactly two events in
// ClickHouse, although deliveries (batches on every hop: delivered,
// emitted, produced) were repeated.
func TestCrashesAndRestartLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the whole engine twice")
	}
	cfg := testConfig(t)
	cfg.KafkaPersist = true // the broker's data and the groups' offsets survive the restart
	c := runCluster(t, cfg)

	const n = 600
	ids := make([]uuid.UUID, n)
	var sent atomic.Int32
	var receiver atomic.Value
	receiver.Store(c.receiver)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				// A CloudEvent resent with the same id is the same job, so a
				// client may retry until the receiver answers.
				for attempt := 0; ; attempt++ {
					id, code := ceJobQuiet(receiver.Load().(string), fmt.Sprintf("crash-%d", i))
					if code == 200 {
						ids[i] = id
						break
					}
					if attempt > 600 {
						t.Errorf("job %d not accepted: %d", i, code)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				sent.Add(1)
				time.Sleep(40 * time.Millisecond) // ~200 jobs/s: the restart falls mid-stream
			}
		}()
	}
	go func() {
		for i := range n {
			work <- i
		}
		close(work)
	}()

	waitSent := func(k int32) {
		for sent.Load() < k {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSent(n / 4)
	for _, name := range []string{"processor", "pgsink", "chsink"} {
		if err := c.eng.Function(name).Kill(); err != nil {
			t.Fatalf("kill %s: %v", name, err)
		}
	}
	t.Logf("killed processor, pgsink and chsink after %d jobs", sent.Load())

	waitSent(n / 2)
	var done int
	_ = c.pg.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'finish') FROM jobs`).Scan(&done)
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("engine stopped with %d jobs sent, %d finished in postgres; restarting", sent.Load(), done)
	if sent.Load() >= n {
		t.Fatal("all jobs were sent before the engine stopped: the restart is not mid-stream")
	}
	c2 := runCluster(t, cfg)
	receiver.Store(c2.receiver)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	var finished, total int
	for time.Now().Before(deadline) {
		_ = c2.pg.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'finish'), count(*) FROM jobs`).Scan(&finished, &total)
		if finished == n {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if finished != n || total != n {
		t.Fatalf("postgres: %d finished of %d rows, want %d of %d", finished, total, n, n)
	}
	var chJobs, chBad, raw uint64
	for time.Now().Before(deadline) {
		_ = c2.ch.QueryRow(ctx, `SELECT count(), countIf(n != 2) FROM (SELECT job_id, count() AS n FROM job_events FINAL GROUP BY job_id)`).Scan(&chJobs, &chBad)
		if chJobs == n && chBad == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	_ = c2.ch.QueryRow(ctx, `SELECT count() FROM job_events`).Scan(&raw)
	if chJobs != n || chBad != 0 {
		t.Fatalf("clickhouse: %d jobs, %d without exactly 2 events; want %d and 0", chJobs, chBad, n)
	}
	var restarts int64
	for _, name := range []string{"processor", "pgsink", "chsink"} {
		restarts += c.eng.Status().Functions[name].Restarts
	}
	t.Logf("all %d jobs finished once; clickhouse stored %d rows for %d events (duplicates hidden by FINAL); %d function restarts before the engine restart",
		n, raw, 2*n, restarts)
	if restarts < 3 {
		t.Fatalf("%d restarts: the killed functions were not restarted", restarts)
	}
	// Batches on every hop (the default): the crashes and the restart fell
	// on batched deliveries, which were redelivered whole or one by one.
	var batches int64
	for _, st := range []engine.Status{c.eng.Status(), c2.eng.Status()} {
		for _, name := range []string{"processor-source", "converter-source", "pgsink-source", "chsink-source"} {
			batches += st.Sources[name].Batches
		}
	}
	t.Logf("%d batched deliveries", batches)
	if batches == 0 {
		t.Fatal("no batched delivery: the test did not exercise crashes mid-batch")
	}
	for i, id := range ids {
		var info struct{ Status string }
		req, _ := http.NewRequest(http.MethodGet, c2.query+"/info/"+id.String(), nil)
		if code := doJSON(t, req, &info); code != 200 || info.Status != "finish" {
			t.Fatalf("job %d: %d %+v", i, code, info)
		}
	}
}

// ceJobQuiet is ceJob without failing the test on a refused connection.
func ceJobQuiet(base, id string) (uuid.UUID, int) {
	req, _ := http.NewRequest(http.MethodPost, base+"/", nil)
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", id)
	req.Header.Set("ce-source", "/e2e")
	req.Header.Set("ce-type", "dev.jobflow.job.requested")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return uuid.Nil, 0
	}
	defer resp.Body.Close()
	var created struct {
		ID uuid.UUID `json:"id"`
	}
	if resp.StatusCode == 200 {
		_ = jsonDecode(resp, &created)
	}
	return created.ID, resp.StatusCode
}
