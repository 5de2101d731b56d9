package scaler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// hopHeaders are not forwarded (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP is the activator: it holds the request until an instance is
// ready (starting one if the pool is at zero), sends it to the least-loaded
// ready instance, and resends it elsewhere if that instance refused the
// connection (it never got the request, e.g. it just crashed).
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p.arrivals.Add(1)
	p.requests.Add(1)
	p.conc.add(start, 1)
	p.gInflight.Inc()
	code := 0
	defer func() {
		p.conc.add(time.Now(), -1)
		p.gInflight.Dec()
		p.countCode(code)
	}()
	fail := func(status int, format string, args ...any) {
		code = status
		if status >= 500 {
			p.errs.Add(1)
			p.log.Warn("activator failed a request", "status", status, "err", fmt.Sprintf(format, args...))
		}
		http.Error(w, fmt.Sprintf(format, args...), status)
	}

	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, p.spec.MaxBodyBytes+1))
		if err != nil {
			fail(http.StatusBadRequest, "read body: %v", err)
			return
		}
		if int64(len(b)) > p.spec.MaxBodyBytes {
			fail(http.StatusRequestEntityTooLarge, "body over %d bytes", p.spec.MaxBodyBytes)
			return
		}
		body = b
	}
	ctx := r.Context()
	deadline := start.Add(p.spec.HoldTimeout)
	for attempt := 0; ; attempt++ {
		in, err := p.acquire(ctx, deadline)
		if err != nil {
			if ctx.Err() != nil {
				code = 499 // the client went away while held
				return
			}
			fail(http.StatusServiceUnavailable, "%s: no instance ready after %s", p.spec.Name, p.spec.HoldTimeout)
			return
		}
		out := r.Clone(ctx)
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = "http", "127.0.0.1:"+strconv.Itoa(in.port)
		out.Host = r.Host
		for _, h := range hopHeaders {
			out.Header.Del(h)
		}
		out.ContentLength = int64(len(body))
		out.Body, out.GetBody = http.NoBody, nil
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := p.transport.RoundTrip(out)
		if err != nil {
			p.release(in)
			if isRefused(err) && time.Now().Before(deadline) && attempt < 100 {
				select { // the instance died under us: it never saw the request
				case <-ctx.Done():
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			if ctx.Err() != nil {
				code = 499
				return
			}
			fail(http.StatusBadGateway, "%s: %v", p.spec.Name, err)
			return
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		code = resp.StatusCode
		w.WriteHeader(resp.StatusCode)
		_, _ = copyFlush(w, resp.Body, resp.ContentLength < 0)
		resp.Body.Close()
		p.release(in)
		in.requests.Add(1)
		return
	}
}

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

// isRefused tells whether the instance never received the request.
func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
