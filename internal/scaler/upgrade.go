package scaler

import (
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// isUpgrade: the request asks to switch protocols (a WebSocket).
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// serveUpgrade proxies a request that switches protocols: held like any
// other until an instance is ready, then joined to it for as long as the
// connection lasts, and counted as one request in flight meanwhile (as
// Knative's activator and queue-proxy count a WebSocket). It is not
// resent: a switched connection cannot be replayed.
func (a *activator) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a.load.arrive()
	a.requests.Add(1)
	a.load.add(start, 1)
	a.metrics.inflight.Inc()
	l, err := a.acquire(r.Context(), start.Add(a.holdTimeout))
	if err != nil {
		if r.Context().Err() != nil {
			a.finish(499)
			return
		}
		msg := a.fail(http.StatusServiceUnavailable, "%s: no instance ready after %s", a.function, a.holdTimeout).Error()
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	code := http.StatusBadGateway
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", l.host()
			pr.Out.Host = pr.In.Host
		},
		Transport:      a.transport,
		ModifyResponse: func(resp *http.Response) error { code = resp.StatusCode; return nil },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			a.log.Warn("activator could not switch protocols", "function", a.function, "err", err)
			http.Error(w, strings.TrimSpace(a.function+": "+err.Error()), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
	l.release(code != http.StatusBadGateway)
	a.finish(code)
}
