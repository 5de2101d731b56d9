package delivery

import (
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/manifest"
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

func TestFromSpec(t *testing.T) {
	p, err := FromSpec(nil)
	if err != nil || p != Defaults {
		t.Fatalf("no spec: %+v %v", p, err)
	}
	r, lin, d, to := int32(3), "linear", "PT0.5S", "PT2S"
	p, err = FromSpec(&manifest.Delivery{Retry: &r, BackoffPolicy: &lin, BackoffDelay: &d, Timeout: &to})
	if err != nil || p != (Policy{Retry: 3, Backoff: Linear, Delay: 500 * time.Millisecond, Timeout: 2 * time.Second}) {
		t.Fatalf("spec: %+v %v", p, err)
	}
	bad := "1s" // Go syntax is not ISO-8601, as Knative's webhook would say
	if _, err := FromSpec(&manifest.Delivery{BackoffDelay: &bad}); err == nil {
		t.Fatal("1s must be refused")
	}
	wrong := "fibonacci"
	if _, err := FromSpec(&manifest.Delivery{BackoffPolicy: &wrong}); err == nil {
		t.Fatal("unknown policy must be refused")
	}
}

func TestRetryable(t *testing.T) {
	for _, s := range []int{0, 404, 408, 409, 429, 500, 502, 503} {
		if !Retryable(s) {
			t.Errorf("%d must be retried", s)
		}
	}
	for _, s := range []int{400, 401, 403, 413, 415, 422} {
		if Retryable(s) {
			t.Errorf("%d must not be retried", s)
		}
	}
}
