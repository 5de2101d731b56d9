package kafkasource

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

// SendBatch POSTs events as one CloudEvents JSON batch.
func (s *Sender) SendBatch(ctx context.Context, target string, events []*event.Event, timeout time.Duration) Attempt {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			body.WriteByte(',')
		}
		// Straight into the body: json.Marshal would re-scan and compact
		// what the event's own encoder wrote.
		if err := event.WriteJson(e, &body); err != nil {
			return Attempt{Err: fmt.Errorf("encode event %s: %w", e.ID(), err)}
		}
	}
	body.WriteByte(']')
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, &body)
	if err != nil {
		return Attempt{Err: err}
	}
	req.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
	resp, err := s.Client.Do(req)
	if err != nil {
		return Attempt{Err: err}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	a := Attempt{Status: resp.StatusCode, Body: answer}
	if !a.OK() {
		a.Err = fmt.Errorf("%s answered %s to a batch of %d", target, resp.Status, len(events))
	}
	return a
}

// batchSize is the size of m in a batch's body.
func batchSize(m *sarama.ConsumerMessage) int { return len(m.Value) + batchOverhead }

// deliverBatch delivers msgs (one partition's, in offset order) and calls
// finished for each record whose delivery finished; a record not finished
// (the session ended) is left for the next session.
func (s *Source) deliverBatch(ctx context.Context, msgs []*sarama.ConsumerMessage, finished func(*sarama.ConsumerMessage)) {
	start := time.Now()
	events := make([]*event.Event, 0, len(msgs))
	owners := make([]*sarama.ConsumerMessage, 0, len(msgs))
	for _, m := range msgs {
		e, ok := s.toEvent(ctx, m, start)
		if !ok {
			finished(m)
			continue
		}
		events, owners = append(events, e), append(owners, m)
	}
	if len(events) == 0 {
		return
	}
	if len(events) > 1 && s.batching.Load() {
		a := s.cfg.Retrier.Sender.SendBatch(ctx, s.cfg.Retrier.Target, events, s.cfg.Retrier.Policy.Timeout)
		s.stats.batches.Add(1)
		if s.cfg.Retrier.OnAttempt != nil {
			s.cfg.Retrier.OnAttempt(s.cfg.Retrier.Target, 0, a)
		}
		if a.OK() {
			for i, e := range events {
				s.outcome(e, Delivered, a, start)
				finished(owners[i])
			}
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
			s.log.Debug("batch refused: delivering its events one by one", "events", len(events), "status", a.Status, "err", a.Err)
		}
	}
	// One by one, in parallel (the records hold their in-flight slots).
	var wg sync.WaitGroup
	for i, e := range events {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.deliverEvent(ctx, e, start) {
				finished(owners[i])
			}
		}()
	}
	wg.Wait()
}
