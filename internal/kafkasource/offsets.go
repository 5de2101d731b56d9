package kafkasource

import (
	"slices"
	"sort"
	"sync"
)

// offsetTracker tracks the records of one partition that are in flight in
// unordered delivery. Records finish in any order; the committable offset
// only moves past a record once it and every record before it finished, so
// a crash redelivers (never skips) whatever was not finished.
type offsetTracker struct {
	mu      sync.Mutex
	pending []int64 // offsets handed out, ascending, not yet below the commit point
	done    []bool  // done[i]: pending[i] finished
}

func newOffsetTracker() *offsetTracker { return &offsetTracker{} }

// add registers an offset; offsets are added in ascending order.
func (t *offsetTracker) add(off int64) {
	t.mu.Lock()
	t.pending = append(t.pending, off)
	t.done = append(t.done, false)
	t.mu.Unlock()
}

// finish marks offs done and returns the next offset to commit (the first
// offset not yet finished, or the last finished + 1) and whether it moved.
// An offset that was not added is ignored.
func (t *offsetTracker) finish(offs ...int64) (next int64, moved bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, off := range offs {
		if i, found := slices.BinarySearch(t.pending, off); found {
			t.done[i] = true
		}
	}
	i := 0
	for i < len(t.pending) && t.done[i] {
		next, moved = t.pending[i]+1, true
		i++
	}
	t.pending, t.done = t.pending[i:], t.done[i:]
	return next, moved
}

// inFlight is the number of offsets not yet committable.
func (t *offsetTracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// sorted reports whether pending is ascending (for tests).
func (t *offsetTracker) sorted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sort.SliceIsSorted(t.pending, func(i, j int) bool { return t.pending[i] < t.pending[j] })
}
