package kafkasource

import (
	"context"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// Outcome of a delivery.
type Outcome int

const (
	// Delivered: the sink answered 2xx.
	Delivered Outcome = iota
	// DeadLettered: the sink refused or retries ran out, and the dead-letter sink took it.
	DeadLettered
	// Dropped: the sink refused it for good (non-retryable status) and there
	// is no dead-letter sink; or the record could not be mapped to an event.
	Dropped
	// Aborted: the context ended first; the record must be delivered again.
	Aborted
	// Filtered: a Trigger's filter did not match the event, which was
	// finished without a request (its offset is committed).
	Filtered
)

func (o Outcome) String() string {
	return [...]string{"delivered", "dead_lettered", "dropped", "aborted", "filtered"}[o]
}

// DefaultStallWait is the longest wait between the attempts of a stalled
// partition (Retrier.MaxStallWait).
const DefaultStallWait = 30 * time.Second

// Retrier is the Deliverer of a KafkaSource: it wraps a Sender with the
// delivery policy's retries and the dead-letter sink, the one decorator
// that decides what becomes of an event the sink does not take.
type Retrier struct {
	Sender     *Sender
	Policy     delivery.Policy
	Target     string
	DeadLetter string // "" when none
	// MaxStallWait caps the wait between attempts once retries are exhausted
	// and there is no dead-letter sink (the partition then stalls and keeps
	// trying rather than skip the record).
	MaxStallWait time.Duration

	listener Listener // told of every attempt; set by New
}

// Deliver runs the attempts for e. It returns Aborted only when ctx ended.
func (r *Retrier) Deliver(ctx context.Context, e *event.Event) (Outcome, Attempt) {
	return r.deliver(ctx, e, nil)
}

// deliver runs the attempts for e; with replies set, each attempt asks the
// sink for a reply and stores it before it counts as a success (trigger.go).
func (r *Retrier) deliver(ctx context.Context, e *event.Event, replies Replier) (Outcome, Attempt) {
	last, ok := r.attempts(ctx, r.Target, e, r.DeadLetter == "", replies)
	if ok {
		return Delivered, last
	}
	if ctx.Err() != nil {
		return Aborted, last
	}
	if r.DeadLetter == "" {
		return Dropped, last // only for non-retryable answers: see attempts
	}
	return r.deadLetter(ctx, e, last)
}

// deadLetter sends e to the dead-letter sink with Knative's knativeerror*
// extensions saying why the sink did not take it (last). The dead-letter
// sink must take it, whatever it answers: a record is never skipped.
func (r *Retrier) deadLetter(ctx context.Context, e *event.Event, last Attempt) (Outcome, Attempt) {
	dl := e.Clone()
	dl.SetExtension("knativeerrordest", r.Target)
	dl.SetExtension("knativeerrorcode", strconv.Itoa(answerStatus(last)))
	if len(last.Body) > 0 {
		dl.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString(last.Body))
	}
	for {
		if _, ok := r.attempts(ctx, r.DeadLetter, &dl, true, nil); ok {
			return DeadLettered, last
		}
		if err := delivery.Sleep(ctx, r.stallWait()); err != nil {
			return Aborted, last
		}
	}
}

// attempts tries target as the policy says; with stall set it goes on past
// the retries (at most MaxStallWait apart) until success, a non-retryable
// answer, or the end of ctx. ok is true on a 2xx (and, with replies, once
// the reply, if any, is stored).
func (r *Retrier) attempts(ctx context.Context, target string, e *event.Event, stall bool, replies Replier) (Attempt, bool) {
	p := r.Policy
	if stall {
		p.Stall = r.stallWait()
	}
	p.Rule = withReplyErrors(p.Rule)
	a := p.Do(ctx, func(ctx context.Context, _ int) Attempt {
		var a Attempt
		if replies != nil {
			a = r.sendReplying(ctx, target, e, replies)
		} else {
			a = r.Sender.Send(ctx, target, e, r.Policy.Timeout)
		}
		if r.listener != nil {
			r.listener.Attempted(target, 1, a)
		}
		return a
	})
	return a, a.OK()
}

func (r *Retrier) stallWait() time.Duration {
	if r.MaxStallWait <= 0 {
		return DefaultStallWait
	}
	return r.MaxStallWait
}
