package autoscaler

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// run records value every tick for d and returns the last decision, feeding
// back the desired count as the ready count (instances start instantly).
func run(a *Autoscaler, now *time.Time, ready *int, d time.Duration, value float64) Decision {
	var dec Decision
	for end := now.Add(d); now.Before(end); {
		*now = now.Add(a.cfg.Tick)
		a.Record(*now, value)
		dec = a.Desired(*now, *ready)
		*ready = dec.Desired
	}
	return dec
}

func TestDefaultsAreKnatives(t *testing.T) {
	c := Defaults()
	if c.TargetPerInstance() != 70 || c.StableWindow != 60*time.Second || c.PanicWindow() != 6*time.Second ||
		c.ScaleToZeroGrace != 30*time.Second || c.Tick != 2*time.Second || c.MaxScaleUpRate != 1000 || c.PanicThreshold != 200 {
		t.Fatalf("defaults differ from Knative's KPA: %+v", c)
	}
}

func TestFromAnnotations(t *testing.T) {
	c, err := FromAnnotations(map[string]string{
		AnnotationMinScale: "1", AnnotationMaxScale: "4", AnnotationTarget: "10", AnnotationUtilization: "50",
		AnnotationWindow: "6s", AnnotationRetention: "3s", AnnotationScaleToZeroGrace: "1s", AnnotationPanicWindow: "50",
		"other.dev/x": "y",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.MinScale != 1 || c.MaxScale != 4 || c.TargetPerInstance() != 5 || c.StableWindow != 6*time.Second ||
		c.PanicWindow() != 3*time.Second || c.ZeroDelay() != 3*time.Second {
		t.Fatalf("%+v", c)
	}
	if c, _ := FromAnnotations(map[string]string{AnnotationMetric: "rps"}); c.Target != 200 {
		t.Fatalf("rps default target %v, want 200", c.Target)
	}
	for _, bad := range []map[string]string{
		{AnnotationWindow: "1s"}, {AnnotationWindow: "60"}, {AnnotationMinScale: "-1"}, {AnnotationMetric: "cpu"},
		{AnnotationMinScale: "3", AnnotationMaxScale: "2"}, {AnnotationUtilization: "0"}, {AnnotationPanicThreshold: "100"},
	} {
		if _, err := FromAnnotations(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	grace := time.Duration(0)
	o := c.Apply(Overrides{StableWindow: time.Second, ScaleToZeroGrace: &grace, Tick: 100 * time.Millisecond})
	if o.StableWindow != time.Second || o.ZeroDelay() != 0 || o.Tick != 100*time.Millisecond {
		t.Fatalf("overrides not applied: %+v", o)
	}
}

func TestStableScaleOutAndScaleToZero(t *testing.T) {
	c := Defaults() // target 70 per instance, window 60s, grace 30s, tick 2s
	now := t0
	a := New(c, now)
	ready := 1
	// 350 concurrent requests for two windows: ceil(350/70) = 5 instances.
	if d := run(a, &now, &ready, 2*time.Minute, 350); d.Desired != 5 {
		t.Fatalf("under 350 concurrency: %+v, want 5", d)
	}
	// Idle: the stable average decays; zero comes only after a whole
	// window without traffic plus the 30s grace.
	idleFrom := now
	for ready > 0 {
		run(a, &now, &ready, c.Tick, 0)
		if now.Sub(idleFrom) > 5*time.Minute {
			t.Fatal("never scaled to zero")
		}
	}
	took := now.Sub(idleFrom)
	if took < c.StableWindow+c.ScaleToZeroGrace || took > c.StableWindow+c.ScaleToZeroGrace+2*c.Tick {
		t.Fatalf("scaled to zero %s after the last request, want window+grace = %s", took, c.StableWindow+c.ScaleToZeroGrace)
	}
	// Stays at zero with no traffic.
	if d := run(a, &now, &ready, time.Minute, 0); d.Desired != 0 {
		t.Fatalf("idle at zero: %+v", d)
	}
}

func TestPanicOnBurstAndNoScaleDownWhilePanicking(t *testing.T) {
	c := Defaults()
	now := t0
	a := New(c, now)
	ready := 1
	run(a, &now, &ready, time.Minute, 10) // steady low load: 1 instance
	if ready != 1 {
		t.Fatalf("steady: %d instances", ready)
	}
	// A burst of 700: the panic window sees it within one tick; the stable
	// window alone would lag.
	now = now.Add(c.Tick)
	a.Record(now, 700)
	d := a.Desired(now, ready)
	if !d.Panic || d.Desired != 4 { // panic window: (10+10+700)/3 = 240 -> 4
		t.Fatalf("burst: %+v, want panic with 4", d)
	}
	ready = d.Desired
	d = run(a, &now, &ready, 2*c.Tick, 700)
	if !d.Panic || d.Desired != 10 {
		t.Fatalf("burst over the panic window: %+v, want panic with 10", d)
	}
	// Burst over: panic mode holds 10 for a stable window after the last burst.
	now = now.Add(c.Tick)
	a.Record(now, 10)
	if d := a.Desired(now, ready); !d.Panic || d.Desired != 10 {
		t.Fatalf("right after the burst: %+v, want to keep 10", d)
	}
	d = run(a, &now, &ready, c.StableWindow+2*c.Tick, 10)
	if d.Panic || d.Desired >= 10 {
		t.Fatalf("a window after the burst: %+v, want out of panic and scaling down", d)
	}
}

func TestScaleDownRateAndBounds(t *testing.T) {
	c := Defaults()
	c.MinScale, c.MaxScale = 2, 6
	now := t0
	a := New(c, now)
	ready := 2
	if d := run(a, &now, &ready, 2*time.Minute, 7000); d.Desired != 6 {
		t.Fatalf("max-scale: %+v", d)
	}
	b := New(c, now.Add(-time.Hour))
	b.Record(now, 0)
	if d := b.Desired(now, 6); d.Desired != 3 {
		t.Fatalf("scale down from 6 with rate 2: %+v, want 3", d)
	}
	if d := run(a, &now, &ready, 5*time.Minute, 0); d.Desired != 2 {
		t.Fatalf("min-scale: %+v", d)
	}
}

func TestNewFunctionStaysAtZeroUntilARequest(t *testing.T) {
	c := Defaults()
	now := t0
	a := New(c, now)
	ready := 0
	if d := run(a, &now, &ready, 3*c.StableWindow, 0); d.Desired != 0 {
		t.Fatalf("a new function with no traffic: %+v, want 0", d)
	}
}

func TestInitialScaleWaitsAWindowBeforeZero(t *testing.T) {
	c := Defaults()
	c.ScaleToZeroGrace, c.InitialScale = 0, 1
	now := t0
	a := New(c, now)
	ready := 1 // started with the function, no traffic
	run(a, &now, &ready, c.StableWindow-c.Tick, 0)
	if ready != 1 {
		t.Fatalf("scaled to %d before a window passed", ready)
	}
	run(a, &now, &ready, 2*c.Tick, 0)
	if ready != 0 {
		t.Fatalf("still %d after a window with grace 0", ready)
	}
	// A poke (request at zero) counts as traffic: one more window to wait.
	a.Poke(now)
	ready = 1
	run(a, &now, &ready, c.StableWindow/2, 0)
	if ready != 1 {
		t.Fatalf("scaled to zero %d right after a poke", ready)
	}
}

func TestNoDataKeepsScale(t *testing.T) {
	a := New(Defaults(), t0)
	if d := a.Desired(t0.Add(time.Second), 3); d.Desired != 3 {
		t.Fatalf("%+v", d)
	}
}
