package client

import (
	"context"
	"time"
)

// Running is a client subscribed for a function's lifetime (Start).
type Running struct {
	c       *Client
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
}

// Start runs c in its own goroutine until Stop.
func (c *Client) Start() *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{c: c, cancel: cancel, done: make(chan struct{}), started: time.Now()}
	go func() { defer close(r.done); c.Run(ctx) }()
	return r
}

// Stop ends the subscription and waits for it; a nil Running does nothing.
func (r *Running) Stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
}

// Settled reports whether the first values have arrived, or wait has
// passed since Start, or an attempt found no service (the function then
// goes on with the values it has, its defaults if none): a starting
// instance stays unready that long so that its first requests are not
// judged by the environment's settings for want of a moment. A nil
// Running is settled.
func (r *Running) Settled(wait time.Duration) bool {
	if r == nil || time.Since(r.started) > wait {
		return true
	}
	select {
	case <-r.c.Ready():
		return true
	case <-r.c.Failed():
		return true
	default:
		return false
	}
}
