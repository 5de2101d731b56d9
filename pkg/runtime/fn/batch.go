package fn

import (
	"context"
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

// batchFunction is a function that takes a batch of events in one request
// (an EventFunction); it answers for the whole batch.
type batchFunction interface {
	handleBatch(ctx context.Context, events []event.Event) error
}

// serveBatch answers a batch request for c's function.
func (c *ceHandler) serveBatch(w http.ResponseWriter, r *http.Request) {
	bf, ok := c.f.(batchFunction)
	if !ok {
		WriteError(w, errNoBatch)
		return
	}
	events, err := ReadEvents(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	batchEvents.WithLabelValues(c.name).Observe(float64(len(events)))
	if err := bf.handleBatch(r.Context(), events); err != nil {
		if StatusOf(err) != http.StatusUnsupportedMediaType {
			c.log.Warn("batch failed", "events", len(events), "err", err)
		}
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
