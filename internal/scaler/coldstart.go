package scaler

import (
	"slices"
	"sync"
	"time"
)

// coldStarts keeps the cold starts of a function's instances (process
// start to first ready answer) for the status' percentiles.
type coldStarts struct {
	mu    sync.Mutex
	count int64
	last  time.Duration
	kept  []time.Duration // the latest, bounded
}

// maxKept bounds the cold starts kept; past it the older half goes.
const maxKept = 10000

func (c *coldStarts) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
	c.last = d
	c.kept = append(c.kept, d)
	if len(c.kept) > maxKept {
		c.kept = c.kept[len(c.kept)-maxKept/2:]
	}
}

// fill sets the cold-start fields of a status.
func (c *coldStarts) fill(st *Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.ColdStarts, st.ColdStartLastMs = c.count, ms(c.last)
	if len(c.kept) > 0 {
		sorted := slices.Clone(c.kept)
		slices.Sort(sorted)
		st.ColdStartP50Ms, st.ColdStartP99Ms = ms(Percentile(sorted, 50)), ms(Percentile(sorted, 99))
	}
}

// Percentile of sorted durations (nearest rank).
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
