package scaler

import (
	"slices"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/autoscaler"
)

// fakeSet is an instance set whose instances are ready as soon as asked for.
type fakeSet struct {
	ready  int
	scaled []int
}

func (f *fakeSet) counts() (ready, starting, draining int) { return f.ready, 0, 0 }
func (f *fakeSet) scaleTo(n int)                           { f.scaled, f.ready = append(f.scaled, n), n }

func loopConfig() autoscaler.Config {
	c := autoscaler.Defaults()
	c.Target, c.Utilization = 1, 100
	c.StableWindow, c.Tick, c.ScaleToZeroGrace = 6*time.Second, time.Second, 2*time.Second
	return c
}

// The loop against a fake set and a fake clock: at zero it stays there
// without requests, a request wakes it, a burst panics it up to the
// concurrency seen, and idle it returns to zero only after the stable
// window and the grace period.
func TestScaleLoopWakesPanicsAndReturnsToZero(t *testing.T) {
	set, load := &fakeSet{}, &loadMeter{}
	loop := newScaleLoop("loop-test", loopConfig(), set, load)
	if loop.wake() {
		t.Fatal("wake before start reported a running loop")
	}
	t0 := time.Now()
	loop.start(t0)
	loop.tick(t0.Add(time.Second))
	if set.ready != 0 || !slices.Equal(set.scaled, []int{0, 0}) {
		t.Fatalf("idle at zero: scaled %v", set.scaled)
	}
	if !loop.wake() || set.ready != 1 {
		t.Fatalf("wake at zero: scaled %v", set.scaled)
	}
	loop.wake()
	if len(set.scaled) != 3 {
		t.Fatalf("a second wake with an instance ready scaled again: %v", set.scaled)
	}

	load.add(t0.Add(time.Second), 4) // four requests for a whole tick
	loop.tick(t0.Add(2 * time.Second))
	var st Status
	loop.fill(&st)
	if st.Desired != 4 || !st.Panic || set.ready != 4 {
		t.Fatalf("a burst of 4 over a target of 1: %+v, scaled %v", st, set.scaled)
	}
	load.add(t0.Add(2*time.Second), -4)

	var zeroAt time.Time
	for now := t0.Add(3 * time.Second); now.Before(t0.Add(30 * time.Second)); now = now.Add(time.Second) {
		loop.tick(now)
		if set.ready == 0 {
			zeroAt = now
			break
		}
	}
	lastActive := t0.Add(2 * time.Second)
	if zeroAt.IsZero() || zeroAt.Sub(lastActive) < 6*time.Second+2*time.Second {
		t.Fatalf("zero %s after the last request, want window+grace (8s) or more; scaled %v", zeroAt.Sub(lastActive), set.scaled)
	}
}

func TestScaleLoopRPS(t *testing.T) {
	cfg := loopConfig()
	cfg.Metric, cfg.Target = autoscaler.RPS, 10
	set, load := &fakeSet{}, &loadMeter{}
	loop := newScaleLoop("loop-rps-test", cfg, set, load)
	t0 := time.Now()
	loop.start(t0)
	loop.wake()
	for range 30 {
		load.arrive()
	}
	loop.tick(t0.Add(time.Second))
	if set.ready != 3 {
		t.Fatalf("30 requests in a second over a target of 10 rps: scaled %v", set.scaled)
	}
}

func TestLoadMeterAveragesConcurrency(t *testing.T) {
	var m loadMeter
	t0 := time.Now()
	m.reset(t0)
	m.add(t0, 2)
	m.add(t0.Add(500*time.Millisecond), -2)
	m.arrive()
	c, n := m.sample(t0.Add(time.Second))
	if c != 1 || n != 1 {
		t.Fatalf("2 requests for half a second: concurrency %v, arrivals %d; want 1, 1", c, n)
	}
	if c, n := m.sample(t0.Add(2 * time.Second)); c != 0 || n != 0 {
		t.Fatalf("next idle interval: %v, %d", c, n)
	}
}
