package autoscaler

import (
	"math"
	"time"
)

// Autoscaler decides a function's instance count the way Knative's KPA does
// (knative.dev/serving pkg/autoscaler/scaling): the metric averaged over the
// stable window and over the panic window, divided by the per-instance
// target; panic mode when the panic average needs PanicThreshold times the
// ready instances, never scaling down while panicking and leaving panic
// after a stable window without a burst; scale-up and scale-down rates
// limited per tick; zero only after a whole stable window without traffic
// plus the grace period. Not safe for concurrent use.
type Autoscaler struct {
	cfg          Config
	samples      []sample
	activeAt     time.Time // last time traffic was seen (or the function was poked)
	panicTime    time.Time
	maxPanicPods int
	zeroSince    time.Time // first decision of zero, for the grace period
}

type sample struct {
	at    time.Time
	value float64
}

// Decision is one scaling decision and what it was based on.
type Decision struct {
	Desired     int     `json:"desired"`
	StableValue float64 `json:"stable_value"` // metric averaged over the stable window
	PanicValue  float64 `json:"panic_value"`  // over the panic window
	Panic       bool    `json:"panic"`
}

// New returns an autoscaler. A function started with instances
// (InitialScale) keeps them for a stable window, as if it had traffic at
// now; one started at zero stays there until a request (Poke).
func New(cfg Config, now time.Time) *Autoscaler {
	a := &Autoscaler{cfg: cfg}
	if cfg.InitialScale > 0 {
		a.activeAt = now
	}
	return a
}

// Config returns the configuration.
func (a *Autoscaler) Config() Config { return a.cfg }

// Record adds one observation of the metric (average concurrency over the
// interval ending at now, or requests per second in it).
func (a *Autoscaler) Record(now time.Time, value float64) {
	a.samples = append(a.samples, sample{now, value})
	if value > 0 {
		a.activeAt = now
	}
	cut := now.Add(-a.cfg.StableWindow)
	i := 0
	for i < len(a.samples) && !a.samples[i].at.After(cut) {
		i++
	}
	if i > 0 {
		a.samples = append(a.samples[:0], a.samples[i:]...)
	}
}

// Poke marks activity without a sample: a request arrived for a function at
// zero (Knative's activator pokes the autoscaler the same way).
func (a *Autoscaler) Poke(now time.Time) { a.activeAt = now; a.zeroSince = time.Time{} }

func (a *Autoscaler) average(now time.Time, window time.Duration) (float64, bool) {
	cut := now.Add(-window)
	sum, n := 0.0, 0
	for _, s := range a.samples {
		if s.at.After(cut) && !s.at.After(now) {
			sum += s.value
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// Desired returns the instance count wanted at now, given the number of
// ready instances. With no sample in the stable window it keeps ready.
func (a *Autoscaler) Desired(now time.Time, ready int) Decision {
	c := a.cfg
	stable, ok := a.average(now, c.StableWindow)
	if !ok {
		return Decision{Desired: c.Clamp(ready)}
	}
	panicValue, _ := a.average(now, c.PanicWindow())
	readyF := math.Max(1, float64(ready))
	maxUp := math.Ceil(c.MaxScaleUpRate * readyF)
	maxDown := math.Floor(readyF / c.MaxScaleDownRate)
	spc := c.TargetPerInstance()
	dspc := math.Ceil(stable / spc)
	dppc := math.Ceil(panicValue / spc)
	desiredStable := int(math.Min(math.Max(dspc, maxDown), maxUp))
	desiredPanic := int(math.Min(math.Max(dppc, maxDown), maxUp))

	over := dppc/readyF >= c.PanicThreshold/100
	switch {
	case over:
		a.panicTime = now
	case !a.panicTime.IsZero() && a.panicTime.Add(c.StableWindow).Before(now):
		a.panicTime, a.maxPanicPods = time.Time{}, 0
	}
	d := Decision{StableValue: stable, PanicValue: panicValue, Desired: desiredStable}
	if !a.panicTime.IsZero() {
		d.Panic = true
		a.maxPanicPods = max(a.maxPanicPods, desiredPanic, ready)
		d.Desired = a.maxPanicPods
	}

	// Zero needs a whole stable window without traffic, then the grace
	// period (or the retention period, if longer) with the last instance kept.
	if d.Desired == 0 {
		switch {
		case now.Sub(a.activeAt) < c.StableWindow:
			d.Desired = 1
		case a.zeroSince.IsZero():
			a.zeroSince = now
			if c.ZeroDelay() > 0 {
				d.Desired = 1
			}
		case now.Sub(a.zeroSince) < c.ZeroDelay():
			d.Desired = 1
		}
		if ready == 0 && d.Desired == 1 && now.Sub(a.activeAt) >= c.StableWindow {
			d.Desired = 0 // nothing running and nothing asked for: stay at zero
		}
	} else {
		a.zeroSince = time.Time{}
	}
	d.Desired = c.Clamp(d.Desired)
	return d
}
