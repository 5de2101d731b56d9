package kafkasource

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// Attempt is the result of one HTTP delivery.
type Attempt = delivery.Attempt

// Sender makes one HTTP attempt to deliver an event (binary mode) or a
// batch (a CloudEvents JSON batch); retrying is the Retrier's job.
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
	req, err := eventRequest(ctx, target, e)
	if err != nil {
		return Attempt{Err: err}
	}
	return s.do(req, "")
}

// MaxReplyBytes bounds the body of a subscriber's answer read as a reply.
const MaxReplyBytes = 8 << 20

// Answer is what a subscriber answered, kept to read a reply event from.
type Answer struct {
	Header http.Header
	Body   []byte // the whole body, up to MaxReplyBytes
	// TooLarge: the body was longer than MaxReplyBytes and was cut.
	TooLarge bool
}

// SendForReply makes one attempt as a Broker does to a Trigger's
// subscriber: with the header Prefer: reply (spec: the sender will process
// a reply), keeping the whole answer, from which a reply is read.
func (s *Sender) SendForReply(ctx context.Context, target string, e *event.Event, timeout time.Duration) (Attempt, *Answer) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := eventRequest(ctx, target, e)
	if err != nil {
		return Attempt{Err: err}, nil
	}
	req.Header.Set("Prefer", "reply")
	resp, err := s.Client.Do(req)
	if err != nil {
		return delivery.Failed(err), nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBytes+1))
	if err != nil {
		return delivery.Failed(fmt.Errorf("%s: read answer: %w", req.URL, err)), nil
	}
	ans := &Answer{Header: resp.Header, Body: body}
	if len(body) > MaxReplyBytes {
		ans.Body, ans.TooLarge = body[:MaxReplyBytes], true
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	}
	a := Attempt{Status: resp.StatusCode, Body: body[:min(len(body), 1024)]}
	if !a.OK() {
		a.Err = fmt.Errorf("%s answered %s", req.URL, resp.Status)
	}
	return a, ans
}

// eventRequest is a POST of e to target in binary mode.
func eventRequest(ctx context.Context, target string, e *event.Event) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return nil, fmt.Errorf("request to %s: %w", target, err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(e), req); err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	tracing.ToHeader(ctx, req.Header)
	return req, nil
}

// SendBatch POSTs body, a CloudEvents JSON batch of n events.
func (s *Sender) SendBatch(ctx context.Context, target string, body []byte, n int, timeout time.Duration) Attempt {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Attempt{Err: err}
	}
	req.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
	return s.do(req, fmt.Sprintf(" to a batch of %d", n))
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
