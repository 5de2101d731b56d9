package fn

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Batched delivery (CloudEvents HTTP batch mode, Content-Type
// application/cloudevents-batch+json: a JSON array of structured events).
//
// It is the local engine's opt-in (the KafkaSource annotation
// jobflow.dev/delivery.batch-size: the sinks, the processor, the
// converter); Knative itself delivers one event per
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

// HandleEach is the HandleBatch of a Handler whose events are independent
// (processor, converter): it handles the events of a batch concurrently
// (a processor's sleeps overlap) and returns all their outputs, in the
// batch's order, to be emitted together.
//
// A batch is all or nothing, so when one event fails HandleEach cancels
// the others and returns that event's error alone, with no output: the
// engine then delivers every event of the batch again on its own, where
// each gets its own outcome (the invalid one dead-lettered, the others
// handled again, their outputs the same by their derived ids). The error
// keeps the event's status, except that a 415 becomes a 400: to the
// engine a 415 to a batch means "this function takes no batches".
func HandleEach(ctx context.Context, h Handler, in []event.Event) ([]Output, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outs := make([][]Output, len(in))
	var (
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for i := range in {
		wg.Go(func() {
			o, err := handleOne(ctx, h, in[i])
			if err == nil {
				outs[i] = o
				return
			}
			once.Do(func() {
				if StatusOf(err) == http.StatusUnsupportedMediaType {
					err = Invalid(err)
				}
				first = fmt.Errorf("event %d (id %s) of the batch: %w", i, in[i].ID(), err)
				cancel()
			})
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	var all []Output
	for _, o := range outs {
		all = append(all, o...)
	}
	return all, nil
}

// handleOne calls h for one event of a batch in its own goroutine, where a
// panic would end the process: it is the event's error (500) instead.
func handleOne(ctx context.Context, h Handler, in event.Event) (outs []Output, err error) {
	defer func() {
		if p := recover(); p != nil {
			outs, err = nil, fmt.Errorf("internal error: %v", p)
		}
	}()
	return h.Handle(ctx, in)
}
