package kafkasource

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
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

// encodeBatch writes the CloudEvents JSON batch of msgs: each record's
// event straight from its headers when it can (appendStructured), else
// through ToEvent and the SDK's writer. It returns the records in the
// batch and those to deliver alone; a record that cannot be mapped at all
// is counted as dropped and finished at once.
func (s *Source) encodeBatch(ctx context.Context, msgs []*sarama.ConsumerMessage, start time.Time,
	finished func(...*sarama.ConsumerMessage)) (body []byte, in, alone []*sarama.ConsumerMessage) {
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
			body = body[:mark]
			e, mapped := s.toEvent(ctx, m, start)
			if !mapped {
				finished(m)
				continue
			}
			if len(in) > 0 {
				body = append(body, ',')
			}
			w := bytes.NewBuffer(body)
			if err := event.WriteJson(e, w); err != nil {
				// Not expected of a valid event: it goes on its own.
				body, alone = body[:mark], append(alone, m)
				continue
			}
			body = w.Bytes()
		}
		in = append(in, m)
	}
	return append(body, ']'), in, alone
}

// batchSize is the size of m in a batch's body.
func batchSize(m *sarama.ConsumerMessage) int { return len(m.Value) + batchOverhead }

// deliverBatch delivers msgs (one partition's, in offset order) and calls
// finished for each record whose delivery finished; a record not finished
// (the session ended) is left for the next session.
func (s *Source) deliverBatch(ctx context.Context, msgs []*sarama.ConsumerMessage, finished func(...*sarama.ConsumerMessage)) {
	start := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	one := func(m *sarama.ConsumerMessage) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.deliver(ctx, m) {
				finished(m)
			}
		}()
	}
	if !s.batching.Load() {
		for _, m := range msgs {
			one(m)
		}
		return
	}
	body, in, alone := s.encodeBatch(ctx, msgs, start, finished)
	for _, m := range alone {
		one(m)
	}
	if len(in) <= 1 {
		for _, m := range in {
			one(m)
		}
		return
	}
	a := s.cfg.Retrier.Sender.SendBatch(ctx, s.cfg.Retrier.Target, body, len(in), s.cfg.Retrier.Policy.Timeout)
	s.stats.batches.Add(1)
	if s.cfg.Retrier.OnAttempt != nil {
		s.cfg.Retrier.OnAttempt(s.cfg.Retrier.Target, 0, a)
	}
	if a.OK() {
		s.stats.delivered.Add(int64(len(in)))
		s.metrics.observeOutcome(Delivered, len(in), time.Since(start))
		finished(in...)
		return
	}
	if ctx.Err() != nil {
		return
	}
	s.stats.batchFallbacks.Add(1)
	if a.Status == http.StatusUnsupportedMediaType && s.batching.CompareAndSwap(true, false) {
		s.log.Warn("the sink does not take CloudEvents batches: delivering one event per request",
			"target", s.cfg.Retrier.Target, "answer", string(a.Body))
	} else {
		s.log.Debug("batch refused: delivering its events one by one", "events", len(in), "status", a.Status, "err", a.Err)
	}
	// One by one, in parallel (the records hold their in-flight slots).
	for _, m := range in {
		one(m)
	}
}
