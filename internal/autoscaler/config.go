// Package autoscaler is the arithmetic of Knative's KPA (Knative Pod
// Autoscaler) for the local engine: the scale settings read from a
// function's func.yaml annotations, and the decision of how many instances a
// function needs from the concurrency (or requests per second) it saw over
// the stable and panic windows. It is pure: the caller passes the time in,
// so tests drive it with a fake clock.
package autoscaler

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The annotations read from func.yaml deploy.annotations (Knative Serving's
// names, plus one of jobflow's own for the grace period, which Knative only
// has as a cluster-wide setting).
const (
	AnnotationMinScale         = "autoscaling.knative.dev/min-scale"
	AnnotationMaxScale         = "autoscaling.knative.dev/max-scale"
	AnnotationInitialScale     = "autoscaling.knative.dev/initial-scale"
	AnnotationMetric           = "autoscaling.knative.dev/metric"
	AnnotationTarget           = "autoscaling.knative.dev/target"
	AnnotationUtilization      = "autoscaling.knative.dev/target-utilization-percentage"
	AnnotationWindow           = "autoscaling.knative.dev/window"
	AnnotationPanicWindow      = "autoscaling.knative.dev/panic-window-percentage"
	AnnotationPanicThreshold   = "autoscaling.knative.dev/panic-threshold-percentage"
	AnnotationRetention        = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
	AnnotationScaleToZeroGrace = "jobflow.dev/scale-to-zero-grace-period"
)

// Metrics the autoscaler scales on.
const (
	Concurrency = "concurrency"
	RPS         = "rps"
)

// Config is the scale configuration of one function.
type Config struct {
	MinScale     int // instances kept even when idle
	MaxScale     int // 0: no limit
	InitialScale int // instances started with the function (jobflow: 0, started on the first request)
	Metric       string
	// Target is the per-instance concurrency (or rps) the KPA aims for,
	// before Utilization (percent) is applied.
	Target      float64
	Utilization float64
	// StableWindow averages the metric for ordinary decisions; the panic
	// window (PanicWindowPercentage of it) reacts to bursts above
	// PanicThreshold (percent of the current capacity).
	StableWindow          time.Duration
	PanicWindowPercentage float64
	PanicThreshold        float64
	// ScaleToZeroGrace is how long the last instance stays after the stable
	// window saw no traffic; RetentionPeriod is the minimum time it is kept
	// (Knative's per-revision annotation); the larger of the two applies.
	ScaleToZeroGrace time.Duration
	RetentionPeriod  time.Duration
	MaxScaleUpRate   float64 // new instances per tick at most this times the ready ones
	MaxScaleDownRate float64 // at most 1/this of the ready instances go per tick
	Tick             time.Duration
}

// Defaults are Knative's KPA defaults (config-autoscaler), except that a
// function starts at zero instances: the engine starts it on its first
// request, as the issue asks (Knative's initial-scale default is 1).
func Defaults() Config {
	return Config{
		MinScale: 0, MaxScale: 0, InitialScale: 0,
		Metric: Concurrency, Target: 100, Utilization: 70,
		StableWindow: 60 * time.Second, PanicWindowPercentage: 10, PanicThreshold: 200,
		ScaleToZeroGrace: 30 * time.Second, RetentionPeriod: 0,
		MaxScaleUpRate: 1000, MaxScaleDownRate: 2, Tick: 2 * time.Second,
	}
}

// FromAnnotations applies func.yaml annotations to Defaults(). Values are
// checked as Knative checks them (window 6s..1h, panic window 1..100%,
// panic threshold 110..1000%, utilization 1..100%, min <= max).
func FromAnnotations(a map[string]string) (Config, error) {
	c := Defaults()
	targetSet := false
	for k, v := range a {
		if !strings.HasPrefix(k, "autoscaling.knative.dev/") && k != AnnotationScaleToZeroGrace {
			continue
		}
		var err error
		switch k {
		case AnnotationMinScale:
			c.MinScale, err = nonNegInt(v)
		case AnnotationMaxScale:
			c.MaxScale, err = nonNegInt(v)
		case AnnotationInitialScale:
			c.InitialScale, err = nonNegInt(v)
		case AnnotationMetric:
			if v != Concurrency && v != RPS {
				err = fmt.Errorf("want %s or %s", Concurrency, RPS)
			}
			c.Metric = v
		case AnnotationTarget:
			c.Target, err = ranged(v, 0.01, 1e9)
			targetSet = true
		case AnnotationUtilization:
			c.Utilization, err = ranged(v, 1, 100)
		case AnnotationWindow:
			c.StableWindow, err = duration(v, 6*time.Second, time.Hour)
		case AnnotationPanicWindow:
			c.PanicWindowPercentage, err = ranged(v, 1, 100)
		case AnnotationPanicThreshold:
			c.PanicThreshold, err = ranged(v, 110, 1000)
		case AnnotationRetention:
			c.RetentionPeriod, err = duration(v, 0, time.Hour)
		case AnnotationScaleToZeroGrace:
			c.ScaleToZeroGrace, err = duration(v, 0, time.Hour)
		}
		if err != nil {
			return c, fmt.Errorf("annotation %s %q: %w", k, v, err)
		}
	}
	if c.Metric == RPS && !targetSet {
		c.Target = 200 // Knative's default rps target
	}
	if c.MaxScale > 0 && c.MinScale > c.MaxScale {
		return c, fmt.Errorf("annotation %s %d is above %s %d", AnnotationMinScale, c.MinScale, AnnotationMaxScale, c.MaxScale)
	}
	return c, nil
}

// Overrides are engine-wide settings that win over func.yaml (tests and
// demos use them to make windows short); zero values leave a setting alone.
type Overrides struct {
	StableWindow     time.Duration
	ScaleToZeroGrace *time.Duration // nil: leave alone (0 is a valid grace)
	Tick             time.Duration
}

// Apply returns c with o applied.
func (c Config) Apply(o Overrides) Config {
	if o.StableWindow > 0 {
		c.StableWindow = o.StableWindow
	}
	if o.ScaleToZeroGrace != nil {
		c.ScaleToZeroGrace = max(*o.ScaleToZeroGrace, 0)
		c.RetentionPeriod = min(c.RetentionPeriod, c.ScaleToZeroGrace)
	}
	if o.Tick > 0 {
		c.Tick = o.Tick
	}
	return c
}

// PanicWindow is the short window used to detect bursts.
func (c Config) PanicWindow() time.Duration {
	return max(time.Duration(float64(c.StableWindow)*c.PanicWindowPercentage/100), c.Tick)
}

// TargetPerInstance is the metric value one instance should carry.
func (c Config) TargetPerInstance() float64 { return c.Target * c.Utilization / 100 }

// ZeroDelay is how long the last instance stays once the stable window
// saw no traffic.
func (c Config) ZeroDelay() time.Duration { return max(c.ScaleToZeroGrace, c.RetentionPeriod) }

// Clamp limits n to [MinScale, MaxScale].
func (c Config) Clamp(n int) int {
	if c.MaxScale > 0 && n > c.MaxScale {
		n = c.MaxScale
	}
	return max(n, c.MinScale)
}

func nonNegInt(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want an integer >= 0")
	}
	return n, nil
}

func ranged(v string, lo, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < lo || f > hi {
		return 0, fmt.Errorf("want a number in [%g, %g]", lo, hi)
	}
	return f, nil
}

func duration(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("want a duration in [%s, %s]", lo, hi)
	}
	return d, nil
}
