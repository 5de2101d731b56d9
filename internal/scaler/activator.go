package scaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// backends is what the activator routes to: the instance set (woken at
// zero through the autoscaler loop), or a fake in tests.
type backends interface {
	// acquire counts one request on the least-loaded ready backend and
	// returns it. With none ready it returns nil and a channel closed at
	// the next change, or an error when no backend will come.
	acquire() (lease, <-chan struct{}, error)
	// wake asks for a backend when none is ready or starting.
	wake()
}

// lease is one request counted on a backend until released.
type lease interface {
	host() string          // host:port the backend serves on
	release(answered bool) // answered: the backend served the request
}

// activator is the proxy in front of a function's instances: it holds a
// request while no instance is ready (waking the function at zero), sends
// it to the least-loaded ready instance, and resends it elsewhere when the
// instance never received it. It serves HTTP (ServeHTTP) and, for the
// engine's own dispatcher, in-process (RoundTrip).
type activator struct {
	function    string
	holdTimeout time.Duration
	maxBody     int64
	log         *slog.Logger
	backends    backends
	load        *loadMeter
	transport   *http.Transport
	metrics     *activatorMetrics

	held, heldTotal, requests, errs atomic.Int64
}

func newActivator(function string, holdTimeout time.Duration, maxBody int64, b backends, load *loadMeter, log *slog.Logger) *activator {
	return &activator{
		function: function, holdTimeout: holdTimeout, maxBody: maxBody, log: log, backends: b, load: load,
		metrics: newActivatorMetrics(function),
		transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// activatorError is a failure of the activator itself, with the status
// ServeHTTP answers.
type activatorError struct {
	code int
	msg  string
}

func (e *activatorError) Error() string { return e.msg }

// resendUnsent is the activator's retry: a request whose instance refused
// the connection (it died or is stopping) goes to another one, quickly
// and for as long as the request may be held; anything else is its
// caller's to retry.
var resendUnsent = delivery.Policy{Retry: 100, Backoff: delivery.Linear, Delay: 10 * time.Millisecond, Rule: delivery.Unsent}

// ServeHTTP buffers the request body (so it can be resent) and answers
// with what RoundTrip got; a request that switches protocols (a WebSocket)
// is joined to its instance instead (upgrade.go).
func (a *activator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isUpgrade(r) {
		a.serveUpgrade(w, r)
		return
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, a.maxBody+1))
		if err != nil {
			a.refuse(w, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
			return
		}
		if int64(len(b)) > a.maxBody {
			a.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", a.maxBody))
			return
		}
		body = b
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	setBody(out, body)
	resp, err := a.RoundTrip(out)
	if err != nil {
		var ae *activatorError
		if errors.As(err, &ae) {
			http.Error(w, ae.msg, ae.code)
		}
		return // otherwise the client went away while held
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = copyFlush(w, resp.Body, resp.ContentLength < 0)
}

// refuse answers a request the activator will not forward.
func (a *activator) refuse(w http.ResponseWriter, code int, msg string) {
	a.load.arrive()
	a.requests.Add(1)
	a.metrics.countCode(code)
	http.Error(w, msg, code)
}

// RoundTrip does what the activator does for one request, in-process. The
// backend is counted busy until the response body is closed. Errors: the
// context's when the caller went away, else an *activatorError (503
// nothing ready in time, 502 the instance failed).
func (a *activator) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	a.load.arrive()
	a.requests.Add(1)
	a.load.add(start, 1)
	a.metrics.inflight.Inc()
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			a.finish(http.StatusBadRequest)
			return nil, &activatorError{code: http.StatusBadRequest, msg: fmt.Sprintf("read body: %v", err)}
		}
		req = req.Clone(req.Context())
		setBody(req, b)
	}
	ctx := req.Context()
	deadline := start.Add(a.holdTimeout)
	var resp *http.Response
	var failure error
	last := resendUnsent.Do(ctx, func(context.Context, int) delivery.Attempt {
		l, err := a.acquire(ctx, deadline)
		if err != nil {
			if ctx.Err() == nil {
				failure = a.fail(http.StatusServiceUnavailable, "%s: no instance ready after %s", a.function, a.holdTimeout)
			}
			return delivery.Attempt{Status: http.StatusServiceUnavailable, Err: err}
		}
		var attempt delivery.Attempt
		resp, attempt, failure = a.forward(ctx, req, l)
		return attempt
	})
	switch {
	case resp != nil:
		return resp, nil
	case failure != nil:
		return nil, failure
	case ctx.Err() != nil:
		a.finish(499) // the client went away while held
		return nil, ctx.Err()
	}
	return nil, a.fail(http.StatusBadGateway, "%s: %v", a.function, last.Err)
}

// forward sends one attempt of req to the leased backend. A response's
// body releases the lease when closed.
func (a *activator) forward(ctx context.Context, req *http.Request, l lease) (*http.Response, delivery.Attempt, error) {
	out := req.Clone(ctx)
	out.URL.Scheme, out.URL.Host = "http", l.host()
	out.Host = req.Host
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.Body = http.NoBody
	if req.GetBody != nil {
		var err error
		if out.Body, err = req.GetBody(); err != nil {
			l.release(false)
			return nil, delivery.Attempt{Status: http.StatusBadRequest, Err: err}, a.fail(http.StatusBadRequest, "body: %v", err)
		}
	}
	r, err := a.transport.RoundTrip(out)
	if err != nil {
		l.release(false) // unsent: the instance died under us and never saw it
		return nil, delivery.Failed(err), nil
	}
	code := r.StatusCode
	r.Body = &releasingBody{ReadCloser: r.Body, release: func() {
		l.release(true)
		a.finish(code)
	}}
	// The backend answered: the caller judges its status.
	return r, delivery.Attempt{Status: http.StatusOK}, nil
}

// finish counts a request leaving the activator with code.
func (a *activator) finish(code int) {
	a.load.add(time.Now(), -1)
	a.metrics.inflight.Dec()
	a.metrics.countCode(code)
}

// fail finishes a request the activator answers itself.
func (a *activator) fail(code int, format string, args ...any) error {
	a.finish(code)
	a.errs.Add(1)
	msg := fmt.Sprintf(format, args...)
	a.log.Warn("activator failed a request", "status", code, "err", msg)
	return &activatorError{code: code, msg: msg}
}

// acquire leases the least-loaded ready backend; with none ready it holds
// the request, waking the function at zero, until one is or deadline.
func (a *activator) acquire(ctx context.Context, deadline time.Time) (lease, error) {
	var heldSince time.Time
	defer func() {
		if !heldSince.IsZero() {
			a.held.Add(-1)
			a.metrics.held.Dec()
			a.metrics.hold.Observe(time.Since(heldSince).Seconds())
		}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		l, changed, err := a.backends.acquire()
		if l != nil || err != nil {
			return l, err
		}
		a.backends.wake()
		if heldSince.IsZero() {
			heldSince = time.Now()
			a.held.Add(1)
			a.heldTotal.Add(1)
			a.metrics.held.Inc()
			a.metrics.heldTotal.Inc()
		}
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond): // readiness can also flip without a notice (probe after a restart)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, errors.New("hold timeout")
		}
	}
}

// fill sets the activator fields of a status.
func (a *activator) fill(st *Status) {
	st.Held, st.HeldTotal, st.Requests, st.Errors = a.held.Load(), a.heldTotal.Load(), a.requests.Load(), a.errs.Load()
}
