package kafkasource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// A Trigger's dispatcher, after eventing-kafka-broker's (RecordDispatcherImpl):
//
//   - a record of the broker's topic that is not a CloudEvent is skipped
//     (the Kafka broker's InvalidCloudEvent: offset committed, counted as
//     dropped, logged);
//   - the event gets the extensions knativekafkapartition and
//     knativekafkaoffset before it is filtered, so a filter may match them;
//   - an event the filter does not match is finished unsent (Filtered);
//     these first steps happen in the partition's reader (dispatch.go's
//     screen), before a record takes a delivery slot;
//   - a matching event is sent with Prefer: reply, and a reply (a 2xx other
//     than 202 carrying a CloudEvent) is stored in the broker before the
//     record is finished. A reply that cannot be stored fails the attempt,
//     which is retried, then dead-lettered (spec: the delivery MUST be
//     failed and retried; the Kafka broker dead-letters at once). A
//     non-empty answer that is not a CloudEvent fails for good: it is
//     dead-lettered (or dropped) as any refusal.

// triggered is the Deliverer of a Trigger: the Retrier asking for and
// storing replies. (The filter was applied before: dispatcher.screen.)
type triggered struct {
	retrier *Retrier
	replies Replier
}

func (t *triggered) Deliver(ctx context.Context, e *event.Event) (Outcome, Attempt) {
	return t.retrier.deliver(ctx, e, t.replies)
}

// ReplyError fails an attempt whose answer was a 2xx but whose reply could
// not be taken: Final when the answer is not a CloudEvent (never retried),
// otherwise the reply could not be stored (retried).
type ReplyError struct {
	Status int // the subscriber's answer
	Final  bool
	Err    error
}

func (e *ReplyError) Error() string { return e.Err.Error() }
func (e *ReplyError) Unwrap() error { return e.Err }

// answerStatus is the status the sink answered, also for an attempt failed
// by its reply (whose Status is 0: it is not a success).
func answerStatus(a Attempt) int {
	var re *ReplyError
	if errors.As(a.Err, &re) {
		return re.Status
	}
	return a.Status
}

// withReplyErrors is rule, except that an attempt failed by a reply is
// retried only when the reply could not be stored.
func withReplyErrors(rule delivery.Rule) delivery.Rule {
	if rule == nil {
		rule = delivery.Knative
	}
	return func(a Attempt) bool {
		var re *ReplyError
		if errors.As(a.Err, &re) {
			return !re.Final
		}
		return rule(a)
	}
}

// sendReplying makes one attempt with Prefer: reply and stores the reply,
// if any; the attempt fails (with a ReplyError) when the reply is not a
// CloudEvent or cannot be stored.
func (r *Retrier) sendReplying(ctx context.Context, target string, e *event.Event, replies Replier) Attempt {
	a, ans := r.Sender.SendForReply(ctx, target, e, r.Policy.Timeout)
	if !a.OK() {
		return a
	}
	reply, err := readReply(ctx, a.Status, ans)
	if err != nil {
		return Attempt{Body: a.Body, Err: &ReplyError{Status: a.Status, Final: true, Err: fmt.Errorf("%s answered %d: %w", target, a.Status, err)}}
	}
	if reply == nil || replies == nil {
		return a
	}
	if err := replies.Reply(ctx, reply); err != nil {
		return Attempt{Body: a.Body, Err: &ReplyError{Status: a.Status, Err: fmt.Errorf("reply of %s not stored: %w", target, err)}}
	}
	return a
}

// readReply reads the reply event of a 2xx answer: nil for a 202 (never a
// reply, spec) or an answer with no event (empty body, no ce- headers); a
// data-less binary event (ce- headers only) is a reply, as on the Kafka
// broker. Any other body that is not a valid CloudEvent is an error.
func readReply(ctx context.Context, status int, ans *Answer) (*event.Event, error) {
	if status == http.StatusAccepted || ans == nil {
		return nil, nil
	}
	if ans.TooLarge {
		return nil, fmt.Errorf("reply larger than %d bytes", MaxReplyBytes)
	}
	msg := cehttp.NewMessage(ans.Header, io.NopCloser(bytes.NewReader(ans.Body)))
	defer msg.Finish(nil)
	if msg.ReadEncoding() == binding.EncodingUnknown {
		if len(ans.Body) == 0 {
			return nil, nil
		}
		return nil, errors.New("non-empty answer that is not a CloudEvent")
	}
	reply, err := binding.ToEvent(ctx, msg)
	if err == nil {
		err = reply.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("invalid reply event: %w", err)
	}
	return reply, nil
}
