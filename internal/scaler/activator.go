package scaler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// hopHeaders are not forwarded (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP is the activator: it holds the request until an instance is
// ready (starting one if the pool is at zero), sends it to the least-loaded
// ready instance, and resends it elsewhere if that instance refused the
// connection (it never got the request, e.g. it just crashed).
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, p.spec.MaxBodyBytes+1))
		if err != nil {
			p.refuse(w, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
			return
		}
		if int64(len(b)) > p.spec.MaxBodyBytes {
			p.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", p.spec.MaxBodyBytes))
			return
		}
		body = b
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	setBody(out, body)
	resp, err := p.RoundTrip(out)
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
func (p *Pool) refuse(w http.ResponseWriter, code int, msg string) {
	p.arrivals.Add(1)
	p.requests.Add(1)
	p.countCode(code)
	http.Error(w, msg, code)
}

// activatorError is a failure of the activator itself, with the status
// ServeHTTP answers.
type activatorError struct {
	code int
	msg  string
}

func (e *activatorError) Error() string { return e.msg }

// RoundTrip does what the activator does for one request, in-process: the
// engine's dispatcher calls it directly (Transport), saving the hop through
// the activator's HTTP server. The instance is counted busy until the
// response body is closed. Errors: the context's when the caller went
// away, else an *activatorError (503 nothing ready in time, 502 the
// instance failed).
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	p.arrivals.Add(1)
	p.requests.Add(1)
	p.conc.add(start, 1)
	p.gInflight.Inc()
	finish := func(code int) {
		p.conc.add(time.Now(), -1)
		p.gInflight.Dec()
		p.countCode(code)
	}
	fail := func(code int, format string, args ...any) error {
		finish(code)
		p.errs.Add(1)
		msg := fmt.Sprintf(format, args...)
		p.log.Warn("activator failed a request", "status", code, "err", msg)
		return &activatorError{code: code, msg: msg}
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			finish(http.StatusBadRequest)
			return nil, &activatorError{code: http.StatusBadRequest, msg: fmt.Sprintf("read body: %v", err)}
		}
		req = req.Clone(req.Context())
		setBody(req, b)
	}
	ctx := req.Context()
	deadline := start.Add(p.spec.HoldTimeout)
	var resp *http.Response
	var failure error
	a := resendUnsent.Do(ctx, func(context.Context, int) delivery.Attempt {
		in, err := p.acquire(ctx, deadline)
		if err != nil {
			if ctx.Err() == nil {
				failure = fail(http.StatusServiceUnavailable, "%s: no instance ready after %s", p.spec.Name, p.spec.HoldTimeout)
			}
			return delivery.Attempt{Status: http.StatusServiceUnavailable, Err: err}
		}
		out := req.Clone(ctx)
		out.URL.Scheme, out.URL.Host = "http", "127.0.0.1:"+strconv.Itoa(in.port)
		out.Host = req.Host
		for _, h := range hopHeaders {
			out.Header.Del(h)
		}
		out.Body = http.NoBody
		if req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				p.release(in)
				failure = fail(http.StatusBadRequest, "body: %v", err)
				return delivery.Attempt{Status: http.StatusBadRequest, Err: err}
			}
		}
		r, err := p.transport.RoundTrip(out)
		if err != nil {
			p.release(in) // unsent: the instance died under us and never saw it
			return delivery.Failed(err)
		}
		code := r.StatusCode
		r.Body = &releasingBody{ReadCloser: r.Body, release: func() {
			p.release(in)
			in.requests.Add(1)
			finish(code)
		}}
		resp = r
		return delivery.Attempt{Status: http.StatusOK} // the instance answered: the caller judges its status
	})
	switch {
	case resp != nil:
		return resp, nil
	case failure != nil:
		return nil, failure
	case ctx.Err() != nil:
		finish(499) // the client went away while held
		return nil, ctx.Err()
	}
	return nil, fail(http.StatusBadGateway, "%s: %v", p.spec.Name, a.Err)
}

// resendUnsent is the activator's retry: a request whose instance refused
// the connection (it died or is stopping) goes to another one, quickly
// and for as long as the request may be held; anything else is its
// caller's to retry.
var resendUnsent = delivery.Policy{Retry: 100, Backoff: delivery.Linear, Delay: 10 * time.Millisecond, Rule: delivery.Unsent}

// releasingBody frees its instance once the response body is closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// setBody makes body r's replayable body.
func setBody(r *http.Request, body []byte) {
	r.ContentLength = int64(len(body))
	r.Body, r.GetBody = http.NoBody, nil
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
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
			return p.RoundTrip(r)
		}
		return next.RoundTrip(r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// acquire picks the least-loaded ready instance and counts the request on
// it; with none ready it holds the request, starting an instance when the
// pool is at zero.
func (p *Pool) acquire(ctx context.Context, deadline time.Time) (*instance, error) {
	var heldSince time.Time
	defer func() {
		if !heldSince.IsZero() {
			p.held.Add(-1)
			p.gHeld.Dec()
			p.hHold.Observe(time.Since(heldSince).Seconds())
		}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		p.mu.Lock()
		var best *instance
		for _, in := range p.insts {
			if in.draining || !in.proc.Ready() {
				continue
			}
			if best == nil || in.inflight.Load() < best.inflight.Load() {
				best = in
			}
		}
		if best != nil {
			best.inflight.Add(1)
			p.mu.Unlock()
			return best, nil
		}
		if p.stopping {
			p.mu.Unlock()
			return nil, errors.New("stopping")
		}
		if _, starting, _ := p.countsLocked(); starting == 0 && p.as != nil {
			p.as.Poke(time.Now()) // at zero: start one now, as Knative's activator pokes the autoscaler
			p.scaleToLocked(1)
		}
		ch := p.changed
		p.mu.Unlock()
		if heldSince.IsZero() {
			heldSince = time.Now()
			p.held.Add(1)
			p.heldTotal.Add(1)
			p.gHeld.Inc()
			p.cHeldTotal.Inc()
		}
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond): // readiness can also flip without a notice (probe after a restart)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, errors.New("hold timeout")
		}
	}
}

func (p *Pool) release(in *instance) { in.inflight.Add(-1) }

func (p *Pool) countCode(code int) {
	p.cReqMu.Lock()
	c := p.cReq[code]
	if c == nil {
		c = mRequests.WithLabelValues(p.spec.Name, strconv.Itoa(code))
		p.cReq[code] = c
	}
	p.cReqMu.Unlock()
	c.Inc()
}

// copyFlush copies a response body, flushing each chunk when the length
// is unknown (a stream).
func copyFlush(w http.ResponseWriter, r io.Reader, stream bool) (int64, error) {
	var f http.Flusher
	if stream {
		f, _ = w.(http.Flusher)
	}
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			if f != nil {
				f.Flush()
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
