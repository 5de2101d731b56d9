package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestWaitMatchesKafkaDataPlane(t *testing.T) {
	exp := Policy{Backoff: Exponential, Delay: 200 * time.Millisecond}
	lin := Policy{Backoff: Linear, Delay: 200 * time.Millisecond}
	for n, want := range map[int]time.Duration{1: 400 * time.Millisecond, 2: 800 * time.Millisecond, 3: 1600 * time.Millisecond, 10: 204800 * time.Millisecond} {
		if got := exp.Wait(n); got != want {
			t.Errorf("exponential retry %d: %s, want %s", n, got, want)
		}
	}
	for n, want := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 5: time.Second} {
		if got := lin.Wait(n); got != want {
			t.Errorf("linear retry %d: %s, want %s", n, got, want)
		}
	}
	if exp.Wait(200) <= 0 {
		t.Error("huge retry counts must not overflow")
	}
}

// TestRetryableIsKnativesRule is the status table of Knative's data plane
// (knative/specs data-plane.md, eventing-kafka-broker's dispatcher): no
// answer, 5xx, 404, 408, 409 and 429 are retried; every other answer is
// final, and a 2xx is a success that is never retried.
func TestRetryableIsKnativesRule(t *testing.T) {
	for _, c := range []struct {
		status int
		retry  bool
		why    string
	}{
		{0, true, "no answer (connection error, timeout)"},
		{200, false, "success"},
		{202, false, "success"},
		{204, false, "success"},
		{301, false, "a redirect is final"},
		{400, false, "invalid event"},
		{401, false, "unauthorised"},
		{403, false, "forbidden"},
		{404, true, "not found: the subscriber may not be there yet"},
		{405, false, "method not allowed"},
		{408, true, "request timeout"},
		{409, true, "conflict"},
		{410, false, "gone"},
		{413, false, "too large"},
		{415, false, "unsupported media type"},
		{422, false, "unprocessable"},
		{429, true, "too many requests"},
		{499, false, "client closed request"},
		{500, true, "internal error"},
		{502, true, "bad gateway"},
		{503, true, "unavailable"},
		{504, true, "gateway timeout"},
		{599, true, "any 5xx"},
	} {
		if got := Retryable(c.status); got != c.retry {
			t.Errorf("%d (%s): retry %v, want %v", c.status, c.why, got, c.retry)
		}
		if c.status/100 != 2 && Knative(Attempt{Status: c.status}) != c.retry {
			t.Errorf("%d: the Knative rule and Retryable disagree", c.status)
		}
	}
}

func TestUnsentRetriesOnlyWhatNeverLeft(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = http.Get("http://" + addr)
	if a := Failed(err); !a.Unsent || !Unsent(a) {
		t.Fatalf("a refused connection must be unsent: %+v", a)
	}
	if Unsent(Attempt{Status: 503}) || Unsent(Failed(errors.New("connection reset"))) {
		t.Fatal("an answered or possibly received request is not unsent")
	}
}

// try answers with the given statuses in turn (the last one for good) and
// records the attempts it was called for.
func try(statuses ...int) (func(context.Context, int) Attempt, *[]int) {
	var seen []int
	return func(_ context.Context, n int) Attempt {
		seen = append(seen, n)
		s := statuses[min(n, len(statuses)-1)]
		if s/100 == 2 {
			return Attempt{Status: s}
		}
		return Attempt{Status: s, Err: fmt.Errorf("answered %d", s)}
	}, &seen
}

func TestDoRetriesWhatTheRuleAllows(t *testing.T) {
	p := Policy{Retry: 3, Backoff: Linear, Delay: time.Millisecond}
	for _, c := range []struct {
		name     string
		statuses []int
		attempts int
		status   int
	}{
		{"success at once", []int{202}, 1, 202},
		{"success after two failures", []int{503, 429, 200}, 3, 200},
		{"invalid: not retried", []int{400}, 1, 400},
		{"retries spent", []int{503}, 4, 503},
		{"retryable then final", []int{503, 415}, 2, 415},
	} {
		f, seen := try(c.statuses...)
		a := p.Do(context.Background(), f)
		if a.Status != c.status || len(*seen) != c.attempts {
			t.Errorf("%s: status %d after %d attempts, want %d after %d", c.name, a.Status, len(*seen), c.status, c.attempts)
		}
	}
}

func TestDoWaitsAsThePolicySays(t *testing.T) {
	p := Policy{Retry: 2, Backoff: Exponential, Delay: 20 * time.Millisecond}
	f, _ := try(503)
	start := time.Now()
	p.Do(context.Background(), f)
	// 40 ms + 80 ms; never less (a loaded machine may take longer).
	if took := time.Since(start); took < 120*time.Millisecond {
		t.Fatalf("two exponential retries of 20 ms took %s, want at least 120ms", took)
	}
}

func TestDoStallsPastItsRetriesUntilSuccess(t *testing.T) {
	// One retry, then a wait of at most Stall between attempts for good.
	p := Policy{Retry: 1, Backoff: Exponential, Delay: time.Millisecond, Stall: time.Millisecond}
	f, seen := try(503, 503, 503, 503, 503, 200)
	if a := p.Do(context.Background(), f); !a.OK() || len(*seen) != 6 {
		t.Fatalf("stalling: %+v after %d attempts", a, len(*seen))
	}
	f, seen = try(503, 503, 400)
	if a := p.Do(context.Background(), f); a.Status != 400 || len(*seen) != 3 {
		t.Fatalf("a refusal ends a stall: %+v after %d attempts", a, len(*seen))
	}
}

func TestDoEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{Retry: 1000, Backoff: Linear, Delay: time.Hour}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	f, seen := try(503)
	if a := p.Do(ctx, f); a.OK() || len(*seen) != 1 {
		t.Fatalf("after cancel: %+v after %d attempts", a, len(*seen))
	}
}
