package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestScaleToZeroAndBack runs the engine with every function at min-scale 0
// and short windows (the engine-wide overrides): nothing runs after startup;
// the first jobs are held by the activators while each stage cold-starts,
// and none fails; once idle, every function goes back to zero after the
// stable window and the grace period; a job after that goes through the
// whole pipeline again from zero.
func TestScaleToZeroAndBack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the whole engine")
	}
	cfg := testConfig(t)
	cfg.Adapters = false // the counter path has its own test; this one is about scaling
	// The jobs pipeline only: other domains' functions may be woken by a
	// PingSource (the orders saga's sweep) and have tests of their own.
	cfg.Functions = []string{"receiver", "processor", "converter", "pgsink", "chsink", "query"}
	grace := 500 * time.Millisecond
	cfg.ScaleToZeroGrace, cfg.AutoscaleWindow, cfg.AutoscaleTick = &grace, 3*time.Second, 200*time.Millisecond
	c := runCluster(t, cfg)

	stages := []string{"receiver", "processor", "converter", "pgsink", "chsink"}
	time.Sleep(time.Second) // five autoscaler ticks without traffic: still nothing runs
	for name, fs := range c.eng.Status().Functions {
		if fs.Scale == nil || !fs.Ready {
			t.Fatalf("%s: not served by a ready activator: %+v", name, fs)
		}
		if n := fs.Scale.Instances + fs.Scale.Starting; n != 0 {
			t.Fatalf("%s: %d instances right after startup; min-scale 0 functions start on their first request", name, n)
		}
	}

	// 200 jobs from 20 clients at once, all while the pipeline is at zero.
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < n; i += 20 {
				if _, code := restJob(t, c.receiver, `{"sleep":20,"data_size":64}`); code != 200 {
					errs <- fmt.Sprintf("job %d: %d", i, code)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	waitFinished(t, c, n)
	st := c.eng.Status()
	for _, name := range stages {
		sc := st.Functions[name].Scale
		if sc.ColdStarts < 1 || sc.HeldTotal < 1 || sc.Errors != 0 {
			t.Errorf("%s after the first jobs: %d cold starts, %d held, %d activator errors; want >=1, >=1, 0", name, sc.ColdStarts, sc.HeldTotal, sc.Errors)
		}
		t.Logf("%s: cold start %.1f ms, %d requests, %d held", name, sc.ColdStartLastMs, sc.Requests, sc.HeldTotal)
	}

	// Idle: every function goes to zero (window 3 s + grace 0.5 s).
	deadline := time.Now().Add(60 * time.Second)
	for {
		busy := ""
		for name, fs := range c.eng.Status().Functions {
			if sc := fs.Scale; sc != nil && sc.Instances+sc.Starting+sc.Draining > 0 {
				busy += fmt.Sprintf(" %s=%d", name, sc.Instances+sc.Starting+sc.Draining)
			}
		}
		if busy == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not at zero 60s after the load:%s", busy)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// From zero again: one job through every stage.
	if _, code := restJob(t, c.receiver, `{"sleep":1,"data_size":8}`); code != 200 {
		t.Fatalf("job after scale to zero: %d", code)
	}
	waitFinished(t, c, n+1)
	// The job is finished in PostgreSQL; its ClickHouse events may still be
	// on their way to chsink (a stage of its own, woken by them).
	deadline = time.Now().Add(30 * time.Second)
	for _, name := range stages {
		for {
			sc := c.eng.Status().Functions[name].Scale
			if sc.ColdStarts >= 2 && sc.Errors == 0 {
				break
			}
			if sc.Errors != 0 || time.Now().After(deadline) {
				t.Errorf("%s: %d cold starts, %d activator errors after the second wake-up", name, sc.ColdStarts, sc.Errors)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func waitFinished(t *testing.T, c *cluster, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var finished int
	for time.Now().Before(deadline) {
		_ = c.pg.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'finish') FROM jobs`).Scan(&finished)
		if finished == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d of %d jobs finished", finished, n)
}
