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

	"github.com/jobflow/jobflow/pkg/runtime/jsonscan"
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
// It reads what the SDK's NewEventsFromHTTPRequest reads, but splits the
// array itself (encoding/json, the SDK's way, scanned every event twice
// before the SDK parsed it) and decodes the common form of an event itself
// (eventDecoder; anything else goes to the SDK's decoder, with JSON data
// kept away from it, see decodeEvent): together these were most of a
// sink's CPU under load (docs/BENCHMARKS.md).
func ReadEvents(r *http.Request) ([]event.Event, error) {
	body, err := readBody(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, Invalidf("read batch: %v", err)
	}
	elems, err := jsonscan.SplitSpans(body)
	if err != nil {
		return nil, Invalidf("invalid CloudEvents batch: %v", err)
	}
	events := make([]event.Event, len(elems))
	var d eventDecoder
	d.begin(len(elems))
	text := string(body) // the events' attributes are its substrings: one copy for the batch
	for i, sp := range elems {
		valid, err := d.decode(body[sp.Start:sp.End], text[sp.Start:sp.End], &events[i])
		if err == nil && !valid {
			err = events[i].Validate()
		}
		if err != nil {
			return nil, Invalidf("invalid CloudEvent %d of the batch: %v", i, err)
		}
	}
	return events, nil
}

// readBody reads a request's body into one buffer of its declared length
// (io.ReadAll grows its buffer from 512 bytes, copying a batch of half a
// megabyte a dozen times); the body's reader (http.MaxBytesReader) still
// bounds what is read.
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 || n > 16<<20 {
		return io.ReadAll(r.Body)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

// DecodeBatch decodes every event of a batch with decode, before anything
// is written: the first that fails refuses the whole batch, named by its
// place and id (with decode's status, 400 for an invalid event).
func DecodeBatch[T any](in []event.Event, decode func(event.Event) (T, error)) ([]T, error) {
	out := make([]T, len(in))
	for i := range in {
		v, err := decode(in[i])
		if err != nil {
			return nil, fmt.Errorf("event %d (id %s): %w", i, in[i].ID(), err)
		}
		out[i] = v
	}
	return out, nil
}

// AppendBatch is DecodeBatch for events that each hold any number of
// values: appendDecoded appends an event's values to the slice it is given,
// so that the batch's values end up in one slice.
func AppendBatch[T any](in []event.Event, appendDecoded func([]T, event.Event) ([]T, error)) ([]T, error) {
	var out []T
	for i := range in {
		var err error
		if out, err = appendDecoded(out, in[i]); err != nil {
			return nil, fmt.Errorf("event %d (id %s): %w", i, in[i].ID(), err)
		}
	}
	return out, nil
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

// decodeEvent is event.UnmarshalJSON of one structured event, except that
// JSON data (an object or array) is not walked by the SDK's decoder, whose
// jsoniter Skip allocates every key inside it: the event is decoded with
// {} in its place and then given the data's bytes, exactly what the SDK
// keeps for JSON data. The data's own syntax is checked by whoever decodes
// it (as with a binary-mode event, whose body the SDK does not check).
func decodeEvent(raw []byte, e *event.Event) error {
	if !bytes.Contains(raw, []byte(`"data":{`)) && !bytes.Contains(raw, []byte(`"data":[`)) {
		return e.UnmarshalJSON(raw) // no JSON data (or spaced unusually): nothing to keep away
	}
	start, end, found, err := jsonscan.Member(raw, "data")
	if err != nil || !found || end-start < 64 || (raw[start] != '{' && raw[start] != '[') ||
		bytes.Contains(raw[:start], []byte(`"data_base64"`)) || bytes.Contains(raw[end:], []byte(`"data_base64"`)) {
		return e.UnmarshalJSON(raw)
	}
	short := make([]byte, 0, len(raw)-(end-start)+2)
	short = append(append(append(short, raw[:start]...), "{}"...), raw[end:]...)
	if err := e.UnmarshalJSON(short); err != nil {
		return err
	}
	if !e.DataBase64 && string(e.DataEncoded) == "{}" {
		e.DataEncoded = raw[start:end]
	}
	return nil
}
