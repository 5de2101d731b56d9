package engine

import (
	"context"
	"sync"
)

// stack holds what to stop, in the order things started; unwind stops
// them last first.
type stack []func()

func (s *stack) push(stop func()) { *s = append(*s, stop) }

func (s *stack) unwind() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
	*s = nil
}

// layer is a group of goroutines that stop together: cancelled and
// waited for when the stack unwinds to it.
type layer struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stops  []func() // after its goroutines ended
}

// layer returns a new layer, stopped when the stack unwinds to it. Its
// context is not the run's: a layer runs until the layers above it stopped.
func (s *stack) layer() *layer {
	l := &layer{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	s.push(func() {
		l.cancel()
		l.wg.Wait()
		for i := len(l.stops) - 1; i >= 0; i-- {
			l.stops[i]()
		}
	})
	return l
}

// onStop runs stop once the layer's goroutines ended (what they used).
func (l *layer) onStop(stop func()) { l.stops = append(l.stops, stop) }

// run runs f in the layer's goroutines.
func (l *layer) run(f func(ctx context.Context)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f(l.ctx)
	}()
}
