// Package scaler runs one function of the local engine as Knative Serving
// runs a revision. A Pool composes three parts, each in its own file:
//
//   - the activator (activator.go), listening on the function's address:
//     it holds requests while no instance is ready, sends each to the
//     least-loaded ready instance and resends one an instance never got;
//   - the instance set (instances.go): 0..N supervised processes on free
//     ports, started, probed, restarted, and drained (a draining instance
//     stops once its requests are answered, so scaling fails no request);
//   - the autoscaler loop (scaleloop.go): each tick it feeds the
//     concurrency (or request rate) the activator saw to Knative's KPA
//     arithmetic (internal/autoscaler) and scales the instance set, down
//     to zero when idle.
package scaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/internal/procs"
)

// Spec of a pool.
type Spec struct {
	Name string
	Bin  string
	Env  []string  // full environment of each instance (PORT is added)
	Log  io.Writer // stdout and stderr of the instances
	// Addr is where the activator listens (host:port; port 0 picks one),
	// unless Listener is set (a port the caller reserved).
	Addr     string
	Listener net.Listener
	Scale    autoscaler.Config
	// HoldTimeout is how long a request may wait for a ready instance
	// before it is answered 503 (default 2 minutes).
	HoldTimeout time.Duration
	// MaxBodyBytes caps request bodies, which the activator buffers so it
	// can resend a request an instance never received (default 32 MiB).
	MaxBodyBytes int64
}

// Pool is a function's instances, its activator and its autoscaler loop.
type Pool struct {
	spec Spec
	log  *slog.Logger
	set  *instanceSet
	loop *scaleLoop
	act  *activator

	ln        net.Listener
	url       string
	srv       *http.Server
	listening atomic.Bool
}

// New returns a pool; Listen then Run start it.
func New(spec Spec, log *slog.Logger) *Pool {
	if spec.HoldTimeout <= 0 {
		spec.HoldTimeout = 2 * time.Minute
	}
	if spec.MaxBodyBytes <= 0 {
		spec.MaxBodyBytes = 32 << 20
	}
	if spec.Scale.Tick <= 0 {
		spec.Scale = autoscaler.Defaults()
	}
	log = log.With("function", spec.Name)
	load := &loadMeter{}
	set := newInstanceSet(procs.Spec{Name: spec.Name, Bin: spec.Bin, Env: spec.Env, Log: spec.Log},
		max(spec.HoldTimeout, 10*time.Minute), log)
	loop := newScaleLoop(spec.Name, spec.Scale, set, load)
	return &Pool{
		spec: spec, log: log, set: set, loop: loop,
		act: newActivator(spec.Name, spec.HoldTimeout, spec.MaxBodyBytes, routes{set, loop}, load, log),
	}
}

// routes gives the activator the instance set to route to and the
// autoscaler loop to wake the function at zero.
type routes struct {
	set  *instanceSet
	loop *scaleLoop
}

func (r routes) acquire() (lease, <-chan struct{}, error) { return r.set.acquire() }
func (r routes) wake()                                    { r.loop.wake() }

// Listen binds the activator's address; the pool counts as ready (Knative:
// the route answers) from then on, even with zero instances.
func (p *Pool) Listen() error {
	if p.spec.Listener != nil {
		p.ln, p.url = p.spec.Listener, "http://"+p.spec.Listener.Addr().String()
		return nil
	}
	addr := p.spec.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("activator of %s: %w", p.spec.Name, err)
	}
	p.ln, p.url = ln, "http://"+ln.Addr().String()
	return nil
}

// URL is where the activator serves the function.
func (p *Pool) URL() string { return p.url }

// Ready reports whether the activator is serving (instances or not).
func (p *Pool) Ready() bool { return p.listening.Load() }

// Started is closed once an instance was first ready.
func (p *Pool) Started() <-chan struct{} { return p.set.started }

// Config is the scale configuration in force.
func (p *Pool) Config() autoscaler.Config { return p.spec.Scale }

// ServeHTTP is the activator's HTTP side.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.act.ServeHTTP(w, r) }

// RoundTrip does what the activator does for one request, in-process: the
// engine's dispatcher calls it directly (Transport), saving the hop through
// the activator's HTTP server.
func (p *Pool) RoundTrip(r *http.Request) (*http.Response, error) { return p.act.RoundTrip(r) }

// Run serves the activator, starts the minimum (or initial) instances and
// runs the autoscaler loop until ctx ends; then it stops accepting
// requests, lets the ones in flight finish, and stops every instance.
func (p *Pool) Run(ctx context.Context) error {
	if p.ln == nil {
		if err := p.Listen(); err != nil {
			return err
		}
	}
	p.loop.start(time.Now())
	p.srv = &http.Server{Handler: p.act, ReadHeaderTimeout: 10 * time.Second}
	srvDone := make(chan error, 1)
	go func() { srvDone <- p.srv.Serve(p.ln) }()
	p.listening.Store(true)

	tick := time.NewTicker(p.spec.Scale.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.shutdown()
			if err := <-srvDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		case now := <-tick.C:
			p.loop.tick(now)
		case err := <-srvDone:
			p.shutdown()
			return fmt.Errorf("activator of %s: %w", p.spec.Name, err)
		}
	}
}

func (p *Pool) shutdown() {
	p.listening.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(sctx)
	p.set.stop()
	p.act.transport.CloseIdleConnections()
}

// Wake starts an instance if the pool is at zero and waits until one is ready.
func (p *Pool) Wake(ctx context.Context) error {
	for {
		changed := p.set.changes()
		if !p.loop.wake() {
			return errors.New("pool is not running")
		}
		if ready, _, _ := p.set.counts(); ready > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill kills the process of one running instance (tests use it to
// simulate a crash; the instance restarts, as a pod's container does). A
// pool at zero has nothing to kill: Kill waits up to 5 s for an instance.
func (p *Pool) Kill() error { return p.set.kill(5 * time.Second) }

// Restarts counts restarts of instances after unexpected exits.
func (p *Pool) Restarts() int64 { return p.set.restarts() }

// Status returns the pool's current state.
func (p *Pool) Status() Status {
	var st Status
	p.loop.fill(&st)
	p.act.fill(&st)
	p.set.fill(&st)
	return st
}

// Transport sends requests for the pools' activator addresses straight to
// the pools (RoundTrip) and all others through next.
func Transport(next http.RoundTripper, pools ...*Pool) http.RoundTripper {
	byHost := map[string]*Pool{}
	for _, p := range pools {
		if u, err := url.Parse(p.URL()); err == nil {
			byHost[u.Host] = p
		}
	}
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		if p := byHost[r.URL.Host]; p != nil {
			return p.act.RoundTrip(r)
		}
		return next.RoundTrip(r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
