package kafkasource

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// Attempt is the result of one HTTP delivery.
type Attempt = delivery.Attempt

// Sender POSTs CloudEvents in binary mode.
type Sender struct{ Client *http.Client }

// NewSender returns a sender with a pooled transport.
func NewSender() *Sender { return NewSenderWith(NewTransport()) }

// NewSenderWith returns a sender over rt (the engine routes its functions'
// addresses straight to their pools).
func NewSenderWith(rt http.RoundTripper) *Sender { return &Sender{Client: &http.Client{Transport: rt}} }

// NewTransport is an HTTP transport that keeps many idle connections per
// host, for deliveries in parallel.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
	return t
}

// Send makes one attempt with the given timeout.
func (s *Sender) Send(ctx context.Context, target string, e *event.Event, timeout time.Duration) Attempt {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return Attempt{Err: err}
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(e), req); err != nil {
		return Attempt{Err: fmt.Errorf("encode event: %w", err)}
	}
	return s.do(req, "")
}

// do sends req and reads the answer: its first KiB is kept (for
// knativeerrordata), the rest drained so the connection is reused. what
// names the request in the error of a non-2xx answer.
func (s *Sender) do(req *http.Request, what string) Attempt {
	resp, err := s.Client.Do(req)
	if err != nil {
		return delivery.Failed(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	a := Attempt{Status: resp.StatusCode, Body: body}
	if !a.OK() {
		a.Err = fmt.Errorf("%s answered %s%s", req.URL, resp.Status, what)
	}
	return a
}

// Outcome of a delivery.
type Outcome int

const (
	// Delivered: the sink answered 2xx.
	Delivered Outcome = iota
	// DeadLettered: the sink refused or retries ran out, and the dead-letter sink took it.
	DeadLettered
	// Dropped: the sink refused it for good (non-retryable status) and there is no dead-letter sink.
	Dropped
	// Aborted: the context ended first; the record must be delivered again.
	Aborted
)

func (o Outcome) String() string {
	return [...]string{"delivered", "dead_lettered", "dropped", "aborted"}[o]
}

// DefaultStallWait is the longest wait between the attempts of a stalled
// partition (Retrier.MaxStallWait).
const DefaultStallWait = 30 * time.Second

// Retrier delivers one event with a policy and a dead-letter sink.
type Retrier struct {
	Sender     *Sender
	Policy     delivery.Policy
	Target     string
	DeadLetter string // "" when none
	// MaxStallWait caps the wait between attempts once retries are exhausted
	// and there is no dead-letter sink (the partition then stalls and keeps
	// trying rather than skip the record).
	MaxStallWait time.Duration
	// OnAttempt is called after every attempt (metrics, tests).
	OnAttempt func(target string, n int, a Attempt)
}

// Deliver runs the attempts for e. It returns Aborted only when ctx ended.
func (r *Retrier) Deliver(ctx context.Context, e *event.Event) (Outcome, Attempt) {
	last, ok := r.attempts(ctx, r.Target, e, r.DeadLetter == "")
	if ok {
		return Delivered, last
	}
	if ctx.Err() != nil {
		return Aborted, last
	}
	if r.DeadLetter == "" {
		return Dropped, last // only for non-retryable answers: see attempts
	}
	dl := e.Clone()
	dl.SetExtension("knativeerrordest", r.Target)
	dl.SetExtension("knativeerrorcode", strconv.Itoa(last.Status))
	if len(last.Body) > 0 {
		dl.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString(last.Body))
	}
	// The dead-letter sink must take it, whatever it answers: never skip a record.
	for {
		if _, ok := r.attempts(ctx, r.DeadLetter, &dl, true); ok {
			return DeadLettered, last
		}
		if err := delivery.Sleep(ctx, r.MaxStallWait); err != nil {
			return Aborted, last
		}
	}
}

// attempts tries target as the policy says; with stall set it goes on past
// the retries (at most MaxStallWait apart) until success, a non-retryable
// answer, or the end of ctx. ok is true on a 2xx.
func (r *Retrier) attempts(ctx context.Context, target string, e *event.Event, stall bool) (Attempt, bool) {
	p := r.Policy
	if stall {
		p.Stall = r.MaxStallWait
		if p.Stall <= 0 {
			p.Stall = DefaultStallWait
		}
	}
	a := p.Do(ctx, func(ctx context.Context, n int) Attempt {
		a := r.Sender.Send(ctx, target, e, r.Policy.Timeout)
		if r.OnAttempt != nil {
			r.OnAttempt(target, n, a)
		}
		return a
	})
	return a, a.OK()
}
