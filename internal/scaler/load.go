package scaler

import (
	"sync"
	"sync/atomic"
	"time"
)

// loadMeter is what the activator observes for the autoscaler loop: the
// requests in the activator, integrated over time so that an interval's
// average concurrency is exact (as queue-proxy reports it), and the
// arrivals (for the rps metric).
type loadMeter struct {
	arrivals atomic.Int64 // since the last sample

	mu   sync.Mutex
	n    int
	last time.Time
	from time.Time
	area float64
}

// arrive counts a request that arrived (forwarded or not).
func (m *loadMeter) arrive() { m.arrivals.Add(1) }

// reset starts the first interval at now.
func (m *loadMeter) reset(now time.Time) {
	m.mu.Lock()
	m.last, m.from, m.area = now, now, 0
	m.mu.Unlock()
}

// add changes the number of requests in the activator by delta at now.
func (m *loadMeter) add(now time.Time, delta int) {
	m.mu.Lock()
	if !m.last.IsZero() {
		m.area += float64(m.n) * now.Sub(m.last).Seconds()
	}
	m.last = now
	m.n += delta
	m.mu.Unlock()
}

// sample ends the interval at now and returns its average concurrency and
// the arrivals since the last sample.
func (m *loadMeter) sample(now time.Time) (concurrency float64, arrivals int64) {
	return m.average(now), m.arrivals.Swap(0)
}

func (m *loadMeter) average(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.area += float64(m.n) * now.Sub(m.last).Seconds()
	m.last = now
	span := now.Sub(m.from).Seconds()
	avg := float64(m.n)
	if span > 0 {
		avg = m.area / span
	}
	m.from, m.area = now, 0
	return avg
}
