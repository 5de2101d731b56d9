package fn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Batched delivery (CloudEvents HTTP batch mode, Content-Type
// application/cloudevents-batch+json: a JSON array of structured events).
//
// It is the local engine's opt-in for sinks (the KafkaSource annotation
// jobflow.dev/delivery.batch-size); Knative itself delivers one event per
// request, which every function keeps taking. A batch is all or nothing:
// 2xx acknowledges every event in it, any other answer none, and the engine
// then delivers the batch's events one by one with the usual retries and
// dead-letter sink, so per-event semantics are never lost.

// BatchFunction is a CloudEvent function that also takes a batch of events
// in one request; it answers for the whole batch.
type BatchFunction interface {
	HandleBatch(ctx context.Context, events []event.Event) error
}

// BatchHandler is a Handler that can take a batch at once (the sinks: one
// group-commit write for the whole batch).
type BatchHandler interface {
	HandleBatch(ctx context.Context, in []event.Event) ([]Output, error)
}

// ErrNoBatch is the answer (415) of a function that takes one event per request.
var ErrNoBatch = WithStatus(http.StatusUnsupportedMediaType,
	errors.New("this function takes one CloudEvent per request, not a batch"))

// IsBatch reports whether r carries a CloudEvents batch.
func IsBatch(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == event.ApplicationCloudEventsBatchJSON
}

// ReadEvents decodes a CloudEvents batch: 400 naming the first invalid event.
//
// It reads what the SDK's NewEventsFromHTTPRequest reads, with the SDK's
// own event decoder, but splits the array itself: encoding/json (the SDK's
// way) scanned every event twice before the SDK parsed it, and jsoniter's
// Skip allocates every key it passes; together they were most of a sink's
// CPU under load (docs/BENCHMARKS.md).
func ReadEvents(r *http.Request) ([]event.Event, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, Invalidf("read batch: %v", err)
	}
	elems, err := splitJSONArray(body)
	if err != nil {
		return nil, Invalidf("invalid CloudEvents batch: %v", err)
	}
	events := make([]event.Event, len(elems))
	for i, raw := range elems {
		if err := events[i].UnmarshalJSON(raw); err != nil {
			return nil, Invalidf("invalid CloudEvent %d of the batch: %v", i, err)
		}
	}
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return nil, Invalidf("invalid CloudEvent %d of the batch: %v", i, err)
		}
	}
	return events, nil
}

// HandleBatch runs a BatchHandler over the whole batch and emits its
// outputs; a handler that takes one event at a time answers ErrNoBatch.
// A batch has no reply: every output needs a sink.
func (f *EventFunction) HandleBatch(ctx context.Context, in []event.Event) error {
	if f.emitter == nil {
		return Unavailable(errors.New("function not started"))
	}
	bh, ok := f.handler.(BatchHandler)
	if !ok {
		return ErrNoBatch
	}
	outs, err := bh.HandleBatch(ctx, in)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if !f.emitter.HasSink(o.To) {
			return fmt.Errorf("output %q has no sink: a batch cannot be answered with replies", o.To)
		}
		if err := f.emitter.Send(ctx, o.To, o.Event); err != nil {
			return err
		}
	}
	return nil
}

// serveBatch answers a batch request for c's function.
func (c *ceHandler) serveBatch(w http.ResponseWriter, r *http.Request) {
	bf, ok := c.f.(BatchFunction)
	if !ok {
		WriteError(w, ErrNoBatch)
		return
	}
	events, err := ReadEvents(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	batchEvents.WithLabelValues(c.name).Observe(float64(len(events)))
	if err := bf.HandleBatch(r.Context(), events); err != nil {
		if StatusOf(err) != http.StatusUnsupportedMediaType {
			c.log.Warn("batch failed", "events", len(events), "err", err)
		}
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// splitJSONArray returns the elements of the JSON array b, unparsed (each
// is checked by the decoder it goes to). It only tracks strings and
// nesting, so it is fast; it fails on anything that is not one array.
func splitJSONArray(b []byte) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '[' {
		return nil, errors.New("want a JSON array of events")
	}
	i = skipSpace(b, i+1)
	var out [][]byte
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			i = skipSpace(b, i)
			start, depth := i, 0
		scan:
			for ; i < len(b); i++ {
				switch b[i] {
				case '"':
					for i++; i < len(b) && b[i] != '"'; i++ {
						if b[i] == '\\' {
							i++
						}
					}
				case '{', '[':
					depth++
				case '}', ']':
					if depth == 0 {
						if b[i] == '}' {
							return nil, fmt.Errorf("unbalanced '}' in element %d", len(out))
						}
						break scan
					}
					depth--
				case ',':
					if depth == 0 {
						break scan
					}
				}
			}
			if i >= len(b) {
				return nil, errors.New("unterminated array")
			}
			elem := bytes.TrimRight(b[start:i], " \t\n\r") // start is past the spaces
			if len(elem) == 0 {
				return nil, fmt.Errorf("empty element %d", len(out))
			}
			out = append(out, elem)
			if b[i] == ']' {
				i++
				break
			}
			i++ // ','
		}
	}
	if skipSpace(b, i) != len(b) {
		return nil, errors.New("data after the array")
	}
	return out, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
