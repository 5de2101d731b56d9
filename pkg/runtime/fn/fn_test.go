package fn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// sink records the events POSTed to it and answers status.
type sink struct {
	mu     sync.Mutex
	events []event.Event
	status int
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := fn.ReadEvent(r)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, *e)
	w.WriteHeader(s.status)
}

func (s *sink) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.events) }

// echo emits its input with a new type to the default output and, when
// named is set, to a named output too.
func echo(named string) fn.HandlerFunc {
	return func(_ context.Context, in event.Event) ([]fn.Output, error) {
		switch in.Type() {
		case "bad":
			return nil, fn.Invalidf("bad input")
		case "down":
			return nil, fn.Unavailable(errors.New("db down"))
		case "boom":
			panic("boom")
		}
		out := in.Clone()
		out.SetType("echoed")
		outs := fn.Emit(out)
		if named != "" {
			outs = append(outs, fn.Output{To: named, Event: out})
		}
		return outs, nil
	}
}

// serve runs f and returns its base URL.
func serve(t *testing.T, f any) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- fn.Serve(ctx, "test", f, fn.RuntimeConfig{ListenAddress: addr, MaxBodyBytes: 1024}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("function never became ready")
	return ""
}

func post(t *testing.T, url, typ string, data []byte) *http.Response {
	t.Helper()
	e := event.New()
	e.SetID("1")
	e.SetSource("/t")
	e.SetType(typ)
	_ = e.SetData("application/json", data)
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestWithSinkEventsGoToTheSinkBeforeTheAnswer(t *testing.T) {
	s := &sink{status: http.StatusAccepted}
	srv := httptest.NewServer(s)
	defer srv.Close()
	t.Setenv("K_SINK", srv.URL)
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return echo(""), nil }))
	resp := post(t, url, "in", []byte(`{}`))
	if resp.StatusCode != http.StatusAccepted || s.count() != 1 || s.events[0].Type() != "echoed" {
		t.Fatalf("status %d, sink got %d events", resp.StatusCode, s.count())
	}
}

func TestSinkFailureFailsTheDelivery(t *testing.T) {
	s := &sink{status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(s)
	defer srv.Close()
	t.Setenv("K_SINK", srv.URL)
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return echo(""), nil }))
	if resp := post(t, url, "in", []byte(`{}`)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 so that the event is redelivered", resp.StatusCode)
	}
	if s.count() != 3 {
		t.Fatalf("sink saw %d attempts, want 3", s.count())
	}
}

func TestWithoutSinkTheEventIsTheReply(t *testing.T) {
	t.Setenv("K_SINK", "")
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return echo(""), nil }))
	resp := post(t, url, "in", []byte(`{"a":1}`))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Type") != "echoed" {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Ce-Type"))
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != `{"a":1}` {
		t.Fatalf("reply body %q", b)
	}
}

func TestNamedOutputNeedsItsSink(t *testing.T) {
	t.Setenv("K_SINK_EXTRA", "")
	f := fn.NewEventFunction("t", func() (fn.Handler, error) { return echo("extra"), nil }, "extra")
	if err := f.Start(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "K_SINK_EXTRA") {
		t.Fatalf("start without K_SINK_EXTRA: %v", err)
	}
	a, b := &sink{status: 202}, &sink{status: 202}
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	defer sa.Close()
	defer sb.Close()
	t.Setenv("K_SINK", sa.URL)
	t.Setenv("K_SINK_EXTRA", sb.URL)
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return echo("extra"), nil }, "extra"))
	if resp := post(t, url, "in", []byte(`{}`)); resp.StatusCode != 202 || a.count() != 1 || b.count() != 1 {
		t.Fatalf("status %d, default sink %d, extra sink %d", resp.StatusCode, a.count(), b.count())
	}
}

func TestBadRequestsGetReasonsAndTheServerKeepsServing(t *testing.T) {
	t.Setenv("K_SINK", "")
	url := serve(t, fn.NewEventFunction("t", func() (fn.Handler, error) { return echo(""), nil }))
	cases := []struct {
		name string
		do   func() *http.Response
		want int
	}{
		{"invalid input", func() *http.Response { return post(t, url, "bad", []byte(`{}`)) }, 400},
		{"dependency down", func() *http.Response { return post(t, url, "down", []byte(`{}`)) }, 503},
		{"panic", func() *http.Response { return post(t, url, "boom", []byte(`{}`)) }, 500},
		{"too big", func() *http.Response { return post(t, url, "in", bytes.Repeat([]byte("x"), 2048)) }, 413},
		{"not a cloudevent", func() *http.Response {
			resp, err := http.Post(url, "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 415},
		{"GET", func() *http.Response {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 405},
	}
	for _, c := range cases {
		resp := c.do()
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %d %s, want %d with a JSON reason", c.name, resp.StatusCode, body, c.want)
		}
	}
	if resp := post(t, url, "in", []byte(`{}`)); resp.StatusCode != 200 {
		t.Fatalf("after bad requests: %d", resp.StatusCode)
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `jobflow_function_requests_total{code="400",function="test"}`) {
		t.Fatal("metrics do not count the 400")
	}
}
