package kafkasource

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Batched delivery, the local engine's opt-in for sinks (jobflow's own
// knob; Knative's KafkaSource sends one event per request).
//
// An unordered source with BatchSize > 1 sends the records that are already
// waiting in a partition's queue (up to BatchSize, and BatchMaxBytes) in one
// request, as a CloudEvents JSON batch (application/cloudevents-batch+json).
// It never waits to fill a batch: at low rates a batch is one event, sent
// as usual in binary mode, so batching adds no latency; under load batches
// grow by themselves.
//
// A batch is all or nothing. A 2xx delivers every event in it. Any other
// answer (or none) delivers each of its events again on its own, with the
// source's retries, backoff and dead-letter sink: an invalid event in a
// batch is dead-lettered alone and the others are delivered (the sink may
// see some of them twice, which Knative's contract allows and jobflow's
// sinks absorb). A sink that answers 415 does not take batches: the source
// stops batching for it and says so.

// DefaultBatchMaxBytes bounds a batch's body (record values plus about
// 256 bytes of attributes per event), under the functions' MAX_BODY_BYTES.
const DefaultBatchMaxBytes = 768 << 10

// batchOverhead is the JSON attributes an event adds to its data.
const batchOverhead = 256

// batcher is the state of batched delivery, shared by a source's
// partitions.
type batcher struct {
	size, maxBytes int
	enabled        atomic.Bool   // cleared when the sink refuses batches
	requests       chan struct{} // one per batch request in flight
	sender         *Sender
	target         string
	timeout        time.Duration
	log            *slog.Logger
}

func newBatcher(cfg Config, log *slog.Logger) *batcher {
	b := &batcher{size: cfg.BatchSize, maxBytes: cfg.BatchMaxBytes, sender: cfg.Retrier.Sender,
		target: cfg.Retrier.Target, timeout: cfg.Retrier.Policy.Timeout, log: log,
		// Requests in flight are capped at MaxInFlight/BatchSize (at least
		// 2): while they are all out, records queue up and the next batch
		// is fuller (group commit), instead of many small batches in
		// parallel.
		requests: make(chan struct{}, max(2, cfg.MaxInFlight/cfg.BatchSize))}
	b.enabled.Store(true)
	return b
}

// on reports whether records go out in batches (b may be nil: never).
func (b *batcher) on() bool { return b != nil && b.enabled.Load() }

// refused notes that the sink refused a batch of n events with a; a sink
// that answers 415 does not take batches at all.
func (b *batcher) refused(a Attempt, n int) {
	if a.Status == http.StatusUnsupportedMediaType && b.enabled.CompareAndSwap(true, false) {
		b.log.Warn("the sink does not take CloudEvents batches: delivering one event per request",
			"target", b.target, "answer", string(a.Body))
		return
	}
	b.log.Debug("batch refused: delivering its events one by one", "events", n, "status", a.Status, "err", a.Err)
}

// gather returns first plus, when batching, the records already waiting in
// the claim's queue, while the batch has room and in-flight slots are free
// (first's slot is taken); it never waits. closed reports the queue was
// closed.
func (u *unordered) gather(claim sarama.ConsumerGroupClaim, first *sarama.ConsumerMessage, batching bool) (msgs []*sarama.ConsumerMessage, closed bool) {
	msgs = []*sarama.ConsumerMessage{first}
	if !batching {
		return msgs, false
	}
	size := batchSize(first)
	for len(msgs) < u.batch.size {
		select {
		case u.slots <- struct{}{}:
		default:
			return msgs, false
		}
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				<-u.slots
				return msgs, true
			}
			msgs = append(msgs, m)
			if size += batchSize(m); size >= u.batch.maxBytes {
				return msgs, false
			}
		default:
			<-u.slots
			return msgs, false
		}
	}
	return msgs, false
}

// deliverBatch delivers msgs (one partition's, in offset order, received
// at start) in one request, and calls finished for each record whose
// delivery finished; a record not finished (the session ended) is left for
// the next session. What the batch cannot hold, and all of it when the
// sink refuses it, is delivered one by one.
func (u *unordered) deliverBatch(ctx context.Context, msgs []*sarama.ConsumerMessage, start time.Time, finished func(*sarama.ConsumerMessage)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// oneByOne delivers in parallel: the records hold their in-flight slots.
	oneByOne := func(msgs []*sarama.ConsumerMessage) {
		for _, m := range msgs {
			wg.Go(func() {
				if u.deliver(ctx, m, nil, start) {
					finished(m)
				}
			})
		}
	}
	if !u.batch.on() {
		oneByOne(msgs)
		return
	}
	body, in, alone := encodeBatch(ctx, msgs, u.namespace, u.source)
	oneByOne(alone)
	if len(in) <= 1 {
		oneByOne(in)
		return
	}
	a := u.batch.sender.SendBatch(ctx, u.batch.target, body, len(in), u.batch.timeout)
	u.listener.Attempted(u.batch.target, len(in), a)
	switch {
	case a.OK():
		r := Result{Outcome: Delivered, Last: a, Took: time.Since(start)}
		for _, m := range in {
			u.listener.Finished(m, r)
			finished(m)
		}
	case ctx.Err() != nil:
		r := Result{Outcome: Aborted, Last: a, Took: time.Since(start)}
		for _, m := range in {
			u.listener.Finished(m, r)
		}
	default:
		u.batch.refused(a, len(in))
		oneByOne(in)
	}
}

// encodeBatch writes the CloudEvents JSON batch of msgs: each record's
// event straight from its headers when it can (appendStructured), else
// through ToEvent and the SDK's writer. It returns the records in the
// batch and those to deliver alone (they cannot be mapped or written: the
// delivery on their own says why).
func encodeBatch(ctx context.Context, msgs []*sarama.ConsumerMessage, namespace, source string) (body []byte, in, alone []*sarama.ConsumerMessage) {
	size := 2
	for _, m := range msgs {
		size += batchSize(m)
	}
	body = make([]byte, 0, size)
	body = append(body, '[')
	in = make([]*sarama.ConsumerMessage, 0, len(msgs))
	for _, m := range msgs {
		mark := len(body)
		if len(in) > 0 {
			body = append(body, ',')
		}
		var ok bool
		if body, ok = appendStructured(body, m); !ok {
			body, ok = appendViaSDK(ctx, body, m, namespace, source)
		}
		if !ok {
			body, alone = body[:mark], append(alone, m)
			continue
		}
		in = append(in, m)
	}
	return append(body, ']'), in, alone
}

// appendViaSDK appends the event of m as the SDK writes it; ok is false
// when m cannot be mapped or written.
func appendViaSDK(ctx context.Context, b []byte, m *sarama.ConsumerMessage, namespace, source string) ([]byte, bool) {
	e, err := ToEvent(ctx, m, namespace, source)
	if err != nil {
		return b, false
	}
	w := bytes.NewBuffer(b)
	if err := event.WriteJson(e, w); err != nil {
		return b, false
	}
	return w.Bytes(), true
}

// batchSize is the size of m in a batch's body.
func batchSize(m *sarama.ConsumerMessage) int { return len(m.Value) + batchOverhead }
