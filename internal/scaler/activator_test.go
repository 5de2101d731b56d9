package scaler

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBackends hands out its leases in order, the last one for good; with
// none it holds the activator until ready is called.
type fakeBackends struct {
	mu      sync.Mutex
	leases  []*fakeLease
	changed chan struct{}
	wakes   atomic.Int64
}

func newFakeBackends(leases ...*fakeLease) *fakeBackends {
	return &fakeBackends{leases: leases, changed: make(chan struct{})}
}

func (f *fakeBackends) acquire() (lease, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.leases) == 0 {
		return nil, f.changed, nil
	}
	l := f.leases[0]
	if len(f.leases) > 1 {
		f.leases = f.leases[1:]
	}
	l.acquired.Add(1)
	return l, nil, nil
}

func (f *fakeBackends) wake() { f.wakes.Add(1) }

func (f *fakeBackends) ready(leases ...*fakeLease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leases = leases
	close(f.changed)
	f.changed = make(chan struct{})
}

type fakeLease struct {
	addr                         string
	acquired, released, answered atomic.Int64
}

func (l *fakeLease) host() string { return l.addr }

func (l *fakeLease) release(answered bool) {
	l.released.Add(1)
	if answered {
		l.answered.Add(1)
	}
}

// backend is an instance stand-in answering "<name> <body>" with status code.
func backend(t *testing.T, name string, code int) *fakeLease {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, name+" "+string(b))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &fakeLease{addr: u.Host}
}

// refusing is an address nothing listens on.
func refusing(t *testing.T) *fakeLease {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &fakeLease{addr: addr}
}

func serveActivator(t *testing.T, b backends, hold time.Duration, maxBody int64) (*activator, string) {
	a := newActivator("activator-test", hold, maxBody, b, &loadMeter{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	t.Cleanup(a.transport.CloseIdleConnections)
	return a, srv.URL
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestActivatorHoldsUntilABackendIsReady(t *testing.T) {
	b := newFakeBackends()
	a, u := serveActivator(t, b, time.Minute, 1<<20)
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Post(u, "text/plain", strings.NewReader("hi"))
		if err != nil {
			done <- answer{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, string(b)}
	}()
	eventually(t, "request held", func() bool { return a.held.Load() == 1 && b.wakes.Load() > 0 })
	one := backend(t, "one", http.StatusOK)
	b.ready(one)
	if got := <-done; got.code != http.StatusOK || got.body != "one hi" {
		t.Fatalf("held request: %+v", got)
	}
	eventually(t, "lease released", func() bool { return one.answered.Load() == 1 })
	var st Status
	a.fill(&st)
	if st.Held != 0 || st.HeldTotal != 1 || st.Requests != 1 || st.Errors != 0 || one.acquired.Load() != 1 {
		t.Fatalf("after one held request: %+v, acquired %d", st, one.acquired.Load())
	}
}

func TestActivatorAnswers503AfterTheHoldTimeout(t *testing.T) {
	b := newFakeBackends()
	a, u := serveActivator(t, b, 100*time.Millisecond, 1<<20)
	start := time.Now()
	if code, _ := post(t, u, "x"); code != http.StatusServiceUnavailable {
		t.Fatalf("no backend: %d, want 503", code)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("answered after %s, before the hold timeout", took)
	}
	var st Status
	a.fill(&st)
	if st.Errors != 1 || st.Held != 0 || b.wakes.Load() == 0 {
		t.Fatalf("after a hold timeout: %+v, wakes %d", st, b.wakes.Load())
	}
}

// A request an instance never received (connection refused) goes to the
// next one; one it answered, even with a 5xx, is not sent again.
func TestActivatorResendsOnlyUnsentRequests(t *testing.T) {
	dead, good := refusing(t), backend(t, "good", http.StatusOK)
	_, u := serveActivator(t, newFakeBackends(dead, good), time.Minute, 1<<20)
	if code, body := post(t, u, "body"); code != http.StatusOK || body != "good body" {
		t.Fatalf("resent request: %d %q", code, body)
	}
	if dead.released.Load() != 1 || dead.answered.Load() != 0 {
		t.Fatalf("dead lease: released %d, answered %d", dead.released.Load(), dead.answered.Load())
	}

	failing, spare := backend(t, "failing", http.StatusInternalServerError), backend(t, "spare", http.StatusOK)
	_, u = serveActivator(t, newFakeBackends(failing, spare), time.Minute, 1<<20)
	if code, body := post(t, u, "x"); code != http.StatusInternalServerError || body != "failing x" {
		t.Fatalf("an instance's 500 is its caller's to retry: got %d %q", code, body)
	}
	if spare.acquired.Load() != 0 {
		t.Fatal("a request the instance answered was sent again")
	}
}

func TestActivatorRefusesBodiesOverTheLimit(t *testing.T) {
	one := backend(t, "one", http.StatusOK)
	a, u := serveActivator(t, newFakeBackends(one), time.Minute, 4)
	if code, _ := post(t, u, "too long"); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("body over the limit: %d, want 413", code)
	}
	if code, _ := post(t, u, "fits"); code != http.StatusOK {
		t.Fatalf("body at the limit: %d", code)
	}
	var st Status
	a.fill(&st)
	if st.Requests != 2 || one.acquired.Load() != 1 {
		t.Fatalf("requests %d, acquired %d", st.Requests, one.acquired.Load())
	}
}
