package scaler

import (
	"sync"
	"time"

	"github.com/jobflow/jobflow/internal/autoscaler"
)

// scalable is what the autoscaler loop scales: the instance set, or a fake
// in tests.
type scalable interface {
	counts() (ready, starting, draining int)
	scaleTo(n int)
}

// scaleLoop is the autoscaler loop: each tick it feeds the load the
// activator observed to the KPA arithmetic (internal/autoscaler) and scales
// the instances to its decision. It also wakes a function at zero when a
// request arrives.
type scaleLoop struct {
	function string
	cfg      autoscaler.Config
	set      scalable
	load     *loadMeter

	// mu orders ticks and wakes, so a wake at zero is not undone by a tick
	// deciding on the samples before it.
	mu       sync.Mutex
	as       *autoscaler.Autoscaler // nil until start
	decision autoscaler.Decision
	lastTick time.Time
}

func newScaleLoop(function string, cfg autoscaler.Config, set scalable, load *loadMeter) *scaleLoop {
	return &scaleLoop{function: function, cfg: cfg, set: set, load: load}
}

// start begins the first interval at now and starts the initial instances.
func (l *scaleLoop) start(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.as = autoscaler.New(l.cfg, now)
	l.lastTick = now
	l.load.reset(now)
	l.set.scaleTo(l.cfg.Clamp(l.cfg.InitialScale))
}

// tick records the metric of the interval ending at now and applies the
// autoscaler's decision.
func (l *scaleLoop) tick(now time.Time) {
	concurrency, arrivals := l.load.sample(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	value := concurrency
	if l.cfg.Metric == autoscaler.RPS {
		value = float64(arrivals) / max(now.Sub(l.lastTick).Seconds(), 1e-3)
	}
	l.lastTick = now
	l.as.Record(now, value)
	ready, _, _ := l.set.counts()
	l.decision = l.as.Desired(now, ready)
	l.set.scaleTo(l.decision.Desired)
	publishDecision(l.function, l.decision)
}

// wake starts an instance when none is ready or starting, and marks the
// function active so the next ticks keep it (Knative's activator pokes the
// autoscaler the same way). It reports false before start.
func (l *scaleLoop) wake() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.as == nil {
		return false
	}
	if ready, starting, _ := l.set.counts(); ready+starting == 0 {
		l.as.Poke(time.Now())
		l.set.scaleTo(1)
	}
	return true
}

// fill sets the autoscaler fields of a status.
func (l *scaleLoop) fill(st *Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cfg
	st.MinScale, st.MaxScale, st.Metric, st.Target = c.MinScale, c.MaxScale, c.Metric, c.TargetPerInstance()
	st.Desired, st.StableValue, st.PanicValue, st.Panic = l.decision.Desired, l.decision.StableValue, l.decision.PanicValue, l.decision.Panic
}
