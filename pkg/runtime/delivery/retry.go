package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Attempt is the result of one try.
type Attempt struct {
	Status int    // the answer's HTTP status; 0: no answer
	Body   []byte // the start of the answer (for knativeerrordata)
	Err    error  // why it failed; nil on a 2xx
	// Unsent: the request never reached the recipient (its connection was
	// refused), so trying again cannot make a duplicate.
	Unsent bool
}

// OK reports a 2xx.
func (a Attempt) OK() bool { return a.Status/100 == 2 }

// Failed is the attempt of a request that got no answer. A refused
// connection is marked Unsent.
func Failed(err error) Attempt {
	var op *net.OpError
	return Attempt{Err: err, Unsent: errors.As(err, &op) && op.Op == "dial"}
}

// Rule says whether a failed attempt may be tried again.
type Rule func(Attempt) bool

// Knative is the rule of Knative's data plane: no answer, 5xx, 404, 408,
// 409 and 429 are tried again; any other status (the other 4xx: the event
// was refused as invalid) is final.
func Knative(a Attempt) bool { return Retryable(a.Status) }

// Unsent tries again only a request that never reached its recipient: a
// proxy's rule, which must not duplicate what its callers retry anyway.
func Unsent(a Attempt) bool { return a.Unsent }

// Retryable is Knative's rule on a status (0: no answer).
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

// Do calls try (n = 0 for the first attempt, 1, 2, ... for the retries)
// until an attempt succeeds, the rule refuses one, the retries are spent
// (unless Stall is set), or ctx ends; it waits Wait(n) before retry n and
// returns the last attempt. When ctx ended, the last attempt may be a
// failure that the rule would have retried: callers check ctx.
func (p Policy) Do(ctx context.Context, try func(ctx context.Context, n int) Attempt) Attempt {
	rule := p.Rule
	if rule == nil {
		rule = Knative
	}
	for n := 0; ; n++ {
		a := try(ctx, n)
		if a.OK() || ctx.Err() != nil || !rule(a) {
			return a
		}
		wait := p.Wait(n + 1)
		if n >= p.Retry {
			if p.Stall <= 0 {
				return a
			}
			wait = min(wait, p.Stall)
		}
		if Sleep(ctx, wait) != nil {
			return a
		}
	}
}

// Sleep waits d or until ctx ends (its error then).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
