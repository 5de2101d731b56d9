// Package batch is group commit: items handed in by many concurrent callers
// are gathered into one batch and written by one flush; every caller waits
// for the flush of its batch and gets its result. A failed flush fails
// every caller in it (they are redelivered); none is half-acknowledged.
package batch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Flush writes one batch; it must be all-or-nothing.
type Flush[T any] func(ctx context.Context, items []T) error

// Config of a batcher.
type Config struct {
	// MaxItems flushes a batch once it holds this many items.
	MaxItems int
	// Linger is how long a batch waits for more items after its first one;
	// 0 flushes whatever is queued at once (pure group commit: batches grow
	// by themselves while the previous flush runs).
	Linger time.Duration
	// Flushers is how many flushes may run at once.
	Flushers int
	// Interval is the least time between the starts of two flushes; 0:
	// none. While a batch waits for its turn more items join it, so a
	// steady stream becomes one write per Interval, and an item that comes
	// after a quiet spell is not delayed at all (unlike a longer Linger).
	// For a database whose cost is per write more than per row.
	Interval time.Duration
	// Timeout bounds one flush.
	Timeout time.Duration
}

// Tuning is the part of a Config that may change while a batcher runs
// (live configuration); see Batcher.Tune.
type Tuning struct {
	MaxItems int
	Linger   time.Duration
}

// Batcher gathers items into batches.
type Batcher[T any] struct {
	cfg   Config
	flush Flush[T]
	in    chan request[T]
	done  chan struct{}
	stats func(size int, took time.Duration, err error)
	tune  func() Tuning
}

type request[T any] struct {
	items  []T
	result chan error
}

// New returns a batcher; call Run to start it.
func New[T any](cfg Config, flush Flush[T]) *Batcher[T] {
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 1000
	}
	if cfg.Flushers <= 0 {
		cfg.Flushers = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Batcher[T]{cfg: cfg, flush: flush, in: make(chan request[T], cfg.MaxItems), done: make(chan struct{})}
}

// OnFlush sets a hook called after each flush (metrics); call before Run.
func (b *Batcher[T]) OnFlush(f func(size int, took time.Duration, err error)) { b.stats = f }

// Tune makes the batcher read MaxItems and Linger from f as each batch
// starts, instead of from its Config (a MaxItems under 1 or a negative
// Linger from f keeps the Config's); call before Run. f must be cheap and
// safe for concurrent use (an atomic load).
func (b *Batcher[T]) Tune(f func() Tuning) { b.tune = f }

// tuning is the MaxItems and Linger of the batch that starts.
func (b *Batcher[T]) tuning() Tuning {
	t := Tuning{MaxItems: b.cfg.MaxItems, Linger: b.cfg.Linger}
	if b.tune == nil {
		return t
	}
	live := b.tune()
	if live.MaxItems > 0 {
		t.MaxItems = live.MaxItems
	}
	if live.Linger >= 0 {
		t.Linger = live.Linger
	}
	return t
}

// ErrClosed is returned by Add after Run ended.
var ErrClosed = errors.New("batcher closed")

// Add hands items in and waits until the batch holding them was flushed.
func (b *Batcher[T]) Add(ctx context.Context, items ...T) error {
	if len(items) == 0 {
		return nil
	}
	r := request[T]{items: items, result: make(chan error, 1)}
	select {
	case <-b.done:
		return ErrClosed
	default:
	}
	select {
	case b.in <- r:
	case <-b.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.result:
		return err
	case <-b.done:
		// Run ended: the request was answered by its flush or by the drain,
		// or it slipped into the queue after the drain and never will be.
		select {
		case err := <-r.result:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		// The batch may still commit; the caller's delivery fails and is
		// redelivered, which the sinks' idempotent writes absorb.
		return ctx.Err()
	}
}

// Run flushes batches until ctx ends; queued requests then fail with ErrClosed.
func (b *Batcher[T]) Run(ctx context.Context) {
	sem := make(chan struct{}, b.cfg.Flushers)
	defer func() {
		for range b.cfg.Flushers {
			sem <- struct{}{}
		}
		close(b.done)
		for {
			select {
			case r := <-b.in:
				r.result <- ErrClosed
			default:
				return
			}
		}
	}()
	var lastStart time.Time
	for {
		var first request[T]
		select {
		case <-ctx.Done():
			return
		case first = <-b.in:
		}
		reqs, n, tun := []request[T]{first}, len(first.items), b.tuning()
		reqs, n = b.gather(ctx, tun, reqs, n)
		if !b.waitTurn(ctx, lastStart) {
			fail(reqs, ErrClosed)
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			fail(reqs, ErrClosed)
			return
		}
		// While every flusher was busy more requests queued up: they join
		// this batch rather than wait for the next one.
		reqs, n = b.topUp(tun.MaxItems, reqs, n)
		lastStart = time.Now()
		go func() {
			defer func() { <-sem }()
			b.flushRequests(reqs, n)
		}()
	}
}

// gather adds queued requests to the batch until it is full, the linger is
// over, or (linger 0) the queue is empty.
func (b *Batcher[T]) gather(ctx context.Context, tun Tuning, reqs []request[T], n int) ([]request[T], int) {
	var timer <-chan time.Time
	if tun.Linger > 0 {
		t := time.NewTimer(tun.Linger)
		defer t.Stop()
		timer = t.C
	}
	for n < tun.MaxItems {
		if timer == nil {
			select {
			case r := <-b.in:
				reqs, n = append(reqs, r), n+len(r.items)
				continue
			default:
				return reqs, n
			}
		}
		select {
		case r := <-b.in:
			reqs, n = append(reqs, r), n+len(r.items)
		case <-timer:
			return reqs, n
		case <-ctx.Done():
			return reqs, n
		}
	}
	return reqs, n
}

// waitTurn waits until Interval has passed since the last flush started;
// false if ctx ended first.
func (b *Batcher[T]) waitTurn(ctx context.Context, lastStart time.Time) bool {
	if b.cfg.Interval <= 0 {
		return true
	}
	wait := time.Until(lastStart.Add(b.cfg.Interval))
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// topUp adds the requests already queued, up to MaxItems, without waiting.
func (b *Batcher[T]) topUp(maxItems int, reqs []request[T], n int) ([]request[T], int) {
	for n < maxItems {
		select {
		case r := <-b.in:
			reqs, n = append(reqs, r), n+len(r.items)
		default:
			return reqs, n
		}
	}
	return reqs, n
}

func (b *Batcher[T]) flushRequests(reqs []request[T], n int) {
	items := make([]T, 0, n)
	for _, r := range reqs {
		items = append(items, r.items...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err := b.flush(ctx, items)
	if err != nil {
		err = fmt.Errorf("batch of %d: %w", len(items), err)
	}
	if b.stats != nil {
		b.stats(len(items), time.Since(start), err)
	}
	fail(reqs, err)
}

func fail[T any](reqs []request[T], err error) {
	for _, r := range reqs {
		r.result <- err
	}
}

// Start runs the batcher in its own goroutine until stop is called; stop
// waits for the flushes under way (queued requests fail with ErrClosed).
func (b *Batcher[T]) Start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	return func() { cancel(); <-done }
}
