// Package delivery is jobflow's one retry policy: how often and how long
// apart a delivery is tried again (Knative's delivery spec: retry,
// backoffPolicy, backoffDelay, timeout) and which answers may be tried
// again at all (Knative's data-plane rule). The engine's dispatcher, a
// function's emitter and the activator all retry through Policy.Do; no
// other code decides "retry or not".
package delivery

import (
	"fmt"
	"math"
	"time"

	"github.com/rickb777/date/period"
)

// Backoff policies (Knative's backoffPolicy).
const (
	Linear      = "linear"
	Exponential = "exponential"
)

// Policy is how one delivery is retried.
type Policy struct {
	// Retry is how many times a delivery is tried again after its first
	// attempt.
	Retry int
	// Backoff (Linear or Exponential) and Delay make the wait before
	// retry n: see Wait.
	Backoff string
	Delay   time.Duration
	// Timeout bounds one attempt; the caller's try applies it (a proxied
	// response may outlive the loop).
	Timeout time.Duration
	// Stall, when above zero, keeps trying once the Retry retries are
	// spent, at most Stall apart, until success, a refusal by the rule, or
	// the end of the context: a partition that must not skip its record.
	Stall time.Duration
	// Rule says whether a failed attempt may be tried again; nil is
	// Knative's (Retryable).
	Rule Rule
}

// Defaults of a KafkaSource or Trigger with no delivery spec (Knative's).
var Defaults = Policy{Retry: 10, Backoff: Exponential, Delay: 300 * time.Millisecond, Timeout: 600 * time.Second}

// ParseBackoff checks a backoffPolicy.
func ParseBackoff(s string) (string, error) {
	if s != Linear && s != Exponential {
		return "", fmt.Errorf("backoffPolicy %q: want linear or exponential", s)
	}
	return s, nil
}

// ParseDuration parses an ISO-8601 duration such as PT0.5S with the library
// Knative uses, so a duration means here what it means on a cluster.
func ParseDuration(s string) (time.Duration, error) {
	pd, err := period.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration (e.g. PT0.5S): %w", s, err)
	}
	d, _ := pd.Duration()
	if d <= 0 {
		// Knative's parser keeps tenths of a second: PT0.05S is 0 there,
		// i.e. no backoff at all. Say so rather than retry in a hot loop.
		return 0, fmt.Errorf("%q is 0 once truncated to tenths of a second, as Knative's parser does: use PT0.1S or more", s)
	}
	return d, nil
}

// Wait is how long to wait before retry n (n = 1, 2, ...), as Knative's
// Kafka data plane (which serves KafkaSource, KafkaSink and the Kafka
// Broker) computes it: delay*n for linear, delay*round(2^n) for exponential.
func (p Policy) Wait(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if p.Backoff == Linear {
		return p.Delay * time.Duration(n)
	}
	f := math.Round(math.Pow(2, float64(n)))
	if f*float64(p.Delay) > float64(math.MaxInt64/2) {
		return time.Duration(math.MaxInt64 / 2)
	}
	return time.Duration(f * float64(p.Delay))
}
