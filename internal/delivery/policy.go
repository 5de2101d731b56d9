// Package delivery is the retry policy of a Knative delivery spec
// (retry, backoffPolicy, backoffDelay, timeout) and the rule for which
// answers are retried.
package delivery

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/rickb777/date/period"

	"github.com/jobflow/jobflow/internal/manifest"
)

// Backoff policies.
const (
	Linear      = "linear"
	Exponential = "exponential"
)

// Policy is a parsed delivery spec.
type Policy struct {
	Retry   int
	Backoff string
	Delay   time.Duration
	Timeout time.Duration
}

// Defaults of a KafkaSource with no delivery spec (Knative's).
var Defaults = Policy{Retry: 10, Backoff: Exponential, Delay: 300 * time.Millisecond, Timeout: 600 * time.Second}

// FromSpec parses d over Defaults. Durations are ISO-8601 (PT0.5S), parsed
// by the same library Knative uses.
func FromSpec(d *manifest.Delivery) (Policy, error) {
	p := Defaults
	if d == nil {
		return p, nil
	}
	if d.Retry != nil {
		if *d.Retry < 0 {
			return p, fmt.Errorf("retry %d: must not be negative", *d.Retry)
		}
		p.Retry = int(*d.Retry)
	}
	if d.BackoffPolicy != nil {
		if *d.BackoffPolicy != Linear && *d.BackoffPolicy != Exponential {
			return p, fmt.Errorf("backoffPolicy %q: want linear or exponential", *d.BackoffPolicy)
		}
		p.Backoff = *d.BackoffPolicy
	}
	var err error
	if d.BackoffDelay != nil {
		if p.Delay, err = ParseDuration(*d.BackoffDelay); err != nil {
			return p, fmt.Errorf("backoffDelay: %w", err)
		}
	}
	if d.Timeout != nil {
		if p.Timeout, err = ParseDuration(*d.Timeout); err != nil {
			return p, fmt.Errorf("timeout: %w", err)
		}
	}
	return p, nil
}

// ParseDuration parses an ISO-8601 duration such as PT0.5S.
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
// Kafka data plane (which serves KafkaSource) computes it: delay*n for
// linear, delay*round(2^n) for exponential.
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

// Retryable is Knative's rule: no response, 5xx, 404, 408, 409 and 429 are
// retried; any other status (other 4xx: the event was refused as invalid)
// is final.
func Retryable(status int) bool {
	switch {
	case status == 0, status >= 500:
		return true
	case status == http.StatusNotFound, status == http.StatusRequestTimeout,
		status == http.StatusConflict, status == http.StatusTooManyRequests:
		return true
	}
	return false
}
