package scaler_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/internal/scaler"
)

// startPool runs a pool of fakefn with the given annotations, short windows
// (the engine-wide overrides the engine also offers) and extra env.
func startPool(t *testing.T, ann map[string]string, o autoscaler.Overrides, env ...string) *scaler.Pool {
	return startPoolO(t, ann, o, env...)
}

func startPoolTB(t testing.TB, ann map[string]string) *scaler.Pool {
	return startPoolO(t, ann, autoscaler.Overrides{})
}

func startPoolO(t testing.TB, ann map[string]string, o autoscaler.Overrides, env ...string) *scaler.Pool {
	t.Helper()
	cfg, err := autoscaler.FromAnnotations(ann)
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Apply(o)
	var log strings.Builder
	var logMu sync.Mutex
	p := scaler.New(scaler.Spec{
		Name: "fake-" + strings.ToLower(t.Name()), Bin: scaler.FakeBin(), Env: append(os.Environ(), env...),
		Log:   writerFunc(func(b []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return log.Write(b) }),
		Scale: cfg, HoldTimeout: 60 * time.Second,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pool run: %v", err)
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("instance output:\n%s", log.String())
			logMu.Unlock()
		}
	})
	waitFor(t, 5*time.Second, "activator listening", p.Ready)
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 90 * time.Second}

func call(url string, ms int, body string) (int, string, error) {
	resp, err := client.Post(fmt.Sprintf("%s/work?ms=%d", url, ms), "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestFirstRequestAtZeroIsHeldNotFailed(t *testing.T) {
	p := startPool(t, nil, autoscaler.Overrides{Tick: 200 * time.Millisecond}, "FAKEFN_START_DELAY=300ms")
	time.Sleep(time.Second) // five autoscaler ticks without a request
	st := p.Status()
	if st.Instances != 0 || st.Starting != 0 {
		t.Fatalf("a min-scale 0 function started before any request: %+v", st)
	}
	start := time.Now()
	code, body, err := call(p.URL(), 0, "hello")
	if err != nil || code != 200 || !strings.HasSuffix(body, " hello") {
		t.Fatalf("first request: %d %q %v", code, body, err)
	}
	took := time.Since(start)
	st = p.Status()
	if st.Instances != 1 || st.ColdStarts != 1 || st.HeldTotal != 1 || st.Errors != 0 {
		t.Fatalf("after the first request: %+v", st)
	}
	if st.ColdStartLastMs < 300 || took < 300*time.Millisecond {
		t.Fatalf("cold start %v ms, request took %s: the instance sleeps 300ms before it is ready", st.ColdStartLastMs, took)
	}
	// Warm: no hold, no cold start.
	if code, _, err := call(p.URL(), 0, "again"); err != nil || code != 200 {
		t.Fatalf("warm request: %d %v", code, err)
	}
	if st := p.Status(); st.HeldTotal != 1 || st.ColdStarts != 1 {
		t.Fatalf("warm request was held or cold-started: %+v", st)
	}
}

func TestManyRequestsAtZeroAllHeldThenServed(t *testing.T) {
	p := startPool(t, nil, autoscaler.Overrides{Tick: 200 * time.Millisecond}, "FAKEFN_START_DELAY=200ms")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 30 {
		wg.Go(func() {
			if code, body, err := call(p.URL(), 10, fmt.Sprint(i)); err != nil || code != 200 || !strings.HasSuffix(body, fmt.Sprintf(" %d", i)) {
				failed.Add(1)
				t.Errorf("request %d: %d %q %v", i, code, body, err)
			}
		})
	}
	wg.Wait()
	if st := p.Status(); failed.Load() != 0 || st.ColdStarts != 1 || st.HeldTotal < 1 {
		t.Fatalf("failed %d; %+v", failed.Load(), st)
	}
}

// The whole life of a function: zero, cold start, scale-out under
// concurrent load, scale-down under a trickle, zero again after the grace
// period, and a cold start again; not one request fails across it.
func TestScaleOutUnderLoadAndBackToZeroWithoutFailures(t *testing.T) {
	grace := 500 * time.Millisecond
	p := startPool(t, map[string]string{
		autoscaler.AnnotationTarget: "2", autoscaler.AnnotationUtilization: "100", autoscaler.AnnotationMaxScale: "5",
		autoscaler.AnnotationPanicWindow: "50",
	}, autoscaler.Overrides{StableWindow: 2 * time.Second, Tick: 200 * time.Millisecond, ScaleToZeroGrace: &grace})

	var sent, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	do := func(ms int) {
		sent.Add(1)
		code, _, err := call(p.URL(), ms, "x")
		if err != nil || code != 200 {
			failed.Add(1)
			mu.Lock()
			failures = append(failures, fmt.Sprintf("%d %v", code, err))
			mu.Unlock()
		}
	}
	// 12 concurrent clients, 50 ms requests, for 4 s: concurrency 12 over a
	// target of 2 per instance wants 6, capped at max-scale 5.
	maxSeen := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					do(50)
				}
			}
		})
	}
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		maxSeen = max(maxSeen, p.Status().Instances)
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if maxSeen < 4 || maxSeen > 5 {
		t.Fatalf("instances under 12 concurrent requests peaked at %d, want 4..5 (max-scale 5); %+v", maxSeen, p.Status())
	}
	// A trickle while the pool scales down: one request every 100 ms for 3 s.
	trickleEnd := time.Now().Add(3 * time.Second)
	for time.Now().Before(trickleEnd) {
		do(5)
		time.Sleep(100 * time.Millisecond)
	}
	if st := p.Status(); st.Instances+st.Starting > 2 {
		t.Errorf("under a trickle (concurrency << 2) still %d instances: %+v", st.Instances+st.Starting, st)
	}
	// Idle: zero after the stable window (2 s) and the grace (0.5 s).
	idle := time.Now()
	waitFor(t, 15*time.Second, "scale to zero", func() bool {
		st := p.Status()
		return st.Instances+st.Starting+st.Draining == 0
	})
	if took := time.Since(idle); took < 2*time.Second {
		t.Errorf("scaled to zero %s after the last request, before window+grace", took)
	}
	colds := p.Status().ColdStarts
	do(0) // cold again: held, then served
	if st := p.Status(); st.ColdStarts != colds+1 || st.Instances != 1 {
		t.Errorf("request after zero: %+v", st)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across scaling: %v", failed.Load(), sent.Load(), failures)
	}
	if st := p.Status(); st.Errors != 0 || st.Requests != sent.Load() {
		t.Fatalf("activator counted %d requests, %d errors; %d were sent", st.Requests, st.Errors, sent.Load())
	}
	t.Logf("%d requests, peak %d instances, %d cold starts (p50 %.1f ms, p99 %.1f ms)",
		sent.Load(), maxSeen, p.Status().ColdStarts, p.Status().ColdStartP50Ms, p.Status().ColdStartP99Ms)
}

func TestMinScaleKeepsInstancesAndKillRestarts(t *testing.T) {
	grace := time.Duration(0)
	p := startPool(t, map[string]string{autoscaler.AnnotationMinScale: "2"},
		autoscaler.Overrides{StableWindow: time.Second, Tick: 100 * time.Millisecond, ScaleToZeroGrace: &grace})
	waitFor(t, 10*time.Second, "min-scale instances", func() bool { return p.Status().Instances == 2 })
	select {
	case <-p.Started():
	default:
		t.Fatal("Started not closed with ready instances")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	// While the killed instance restarts (its port refuses connections),
	// requests go to the other one, or are resent when they hit the dead one.
	waitFor(t, 10*time.Second, "exit seen", func() bool { return p.Restarts() == 1 })
	for i := range 20 {
		if code, _, err := call(p.URL(), 0, "k"); err != nil || code != 200 {
			t.Fatalf("request %d after a kill: %d %v", i, code, err)
		}
	}
	waitFor(t, 10*time.Second, "restart", func() bool { return p.Status().Instances == 2 })
	time.Sleep(2 * time.Second) // idle for two windows: min-scale holds
	if st := p.Status(); st.Instances != 2 {
		t.Fatalf("min-scale 2 not kept when idle: %+v", st)
	}
}
