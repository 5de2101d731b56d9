package fn

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/cebatch"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// EmitConfig is how an emitter sends, from the environment. Batching is
// the local engine's: it sets JOBFLOW_EMIT_BATCH for every function (not
// with JOBFLOW_ONE_EVENT_PER_REQUEST), because its KafkaSink ingress takes
// CloudEvents batches; Knative's KafkaSink does not, and on a cluster
// nothing sets it, so a function there sends one event per request.
type EmitConfig struct {
	Batch     bool          `envconfig:"JOBFLOW_EMIT_BATCH" default:"false" desc:"group-commit concurrent emits to one sink as CloudEvents batch requests (set by the local engine; Knative's KafkaSink takes one event per request)"`
	MaxEvents int           `envconfig:"JOBFLOW_EMIT_BATCH_MAX_EVENTS" default:"500" desc:"most events in one batch request"`
	MaxBytes  int           `envconfig:"JOBFLOW_EMIT_BATCH_MAX_BYTES" default:"1048576" desc:"largest body of a batch request (an event larger than this goes alone)"`
	Linger    time.Duration `envconfig:"JOBFLOW_EMIT_BATCH_LINGER" default:"0s" desc:"how long a batch waits for more events after its first; 0: it takes the events that queued while the previous requests were out (no added latency)"`
	Requests  int           `envconfig:"JOBFLOW_EMIT_BATCH_REQUESTS" default:"2" desc:"batch requests in flight at once per sink; events queue (and join one batch) while they are all out"`
}

// eventOverhead is about what an event's attributes add to its data in a
// batch's JSON.
const eventOverhead = 320

// fallbackParallel is how many events of a refused batch are sent alone at
// once.
const fallbackParallel = 16

// sinkBatch group-commits the emits to one sink: concurrent callers' events
// are gathered by a batch.Batcher and sent as one CloudEvents batch request
// (application/cloudevents-batch+json), each caller released once its
// batch is acknowledged. A batch is all or nothing, as the engine's batched
// delivery: when the sink refuses it, each of its events is sent again on
// its own (with emitRetry), so each caller gets its own event's outcome;
// a sink that answers 415 takes single events from then on.
type sinkBatch struct {
	e              *Emitter
	output, target string
	maxEvents      int
	maxBytes       int
	batcher        *batch.Batcher[*pending]
	stop           func()
	singles        atomic.Bool // the sink refused a batch with 415
}

// pending is one event in a batch and, once flushed, its outcome.
type pending struct {
	ev  *event.Event
	err error
}

func newSinkBatch(e *Emitter, output, target string, cfg EmitConfig) *sinkBatch {
	b := &sinkBatch{e: e, output: output, target: target, maxEvents: max(1, cfg.MaxEvents), maxBytes: cfg.MaxBytes}
	b.batcher = batch.New(batch.Config{MaxItems: b.maxEvents, Linger: cfg.Linger, Flushers: max(1, cfg.Requests),
		Timeout: 2 * e.client.Timeout}, b.flush)
	b.batcher.OnFlush(func(size int, _ time.Duration, _ error) {
		emitBatchEvents.WithLabelValues(e.function, output).Observe(float64(size))
	})
	b.stop = b.batcher.Start()
	return b
}

// send hands evs in as one group and waits for its batch: the outcome of
// each event (nil: accepted).
func (b *sinkBatch) send(ctx context.Context, evs []event.Event) []error {
	ps := make([]*pending, len(evs))
	for i := range evs {
		ps[i] = &pending{ev: &evs[i]}
	}
	errs := make([]error, len(evs))
	if err := b.batcher.Add(ctx, ps...); err != nil {
		// Not flushed, or flushed without us waiting: the outcomes are not ours to read.
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i, p := range ps {
		errs[i] = p.err
	}
	return errs
}

// flush sends a batch (in requests of at most maxEvents and maxBytes) and
// records each event's outcome; it never fails as a whole.
func (b *sinkBatch) flush(ctx context.Context, ps []*pending) error {
	if len(ps) == 1 || b.singles.Load() {
		b.oneByOne(ctx, ps)
		return nil
	}
	var wg sync.WaitGroup
	for _, part := range b.split(ps) {
		wg.Go(func() { b.sendBatch(ctx, part) })
	}
	wg.Wait()
	return nil
}

// part is the events of one batch request and their JSON array.
type part struct {
	ps   []*pending
	body []byte
}

// split encodes ps into parts within the limits; an event that cannot be
// encoded is a part alone (sent alone, it gets its own error).
func (b *sinkBatch) split(ps []*pending) []part {
	// A body's buffer is sized for the events at once (growing it by
	// doubling cost the converter a twentieth of its CPU).
	size := 2
	for _, p := range ps {
		size += len(p.ev.DataEncoded) + eventOverhead
	}
	size = min(size, b.maxBytes+2)
	var parts []part
	newPart := func() part {
		return part{body: append(make([]byte, 0, size), '['), ps: make([]*pending, 0, min(len(ps), b.maxEvents))}
	}
	cur := newPart()
	done := func() {
		if len(cur.ps) > 0 {
			parts = append(parts, part{ps: cur.ps, body: append(cur.body, ']')})
		}
		cur = newPart()
	}
	var js []byte // one event's JSON, the buffer reused
	for _, p := range ps {
		var ok bool
		if js, ok = cebatch.AppendEvent(js[:0], p.ev); !ok {
			parts = append(parts, part{ps: []*pending{p}})
			continue
		}
		if len(cur.ps) > 0 && (len(cur.ps) >= b.maxEvents || len(cur.body)+len(js)+2 > b.maxBytes) {
			done()
		}
		if len(cur.ps) > 0 {
			cur.body = append(cur.body, ',')
		}
		cur.body = append(cur.body, js...)
		cur.ps = append(cur.ps, p)
	}
	done()
	return parts
}

// sendBatch sends one part in one request; refused (or a part of one),
// its events go one by one.
func (b *sinkBatch) sendBatch(ctx context.Context, p part) {
	if len(p.ps) == 1 || b.singles.Load() {
		b.oneByOne(ctx, p.ps)
		return
	}
	a := b.post(ctx, p.body)
	if a.OK() {
		return
	}
	if a.Status == http.StatusUnsupportedMediaType && b.singles.CompareAndSwap(false, true) {
		slog.Warn("the sink does not take CloudEvents batches: emitting one event per request",
			"function", b.e.function, "output", b.output, "target", b.target)
	}
	slog.Debug("batch refused: emitting its events one by one", "function", b.e.function, "target", b.target,
		"events", len(p.ps), "status", a.Status, "err", a.Err)
	b.oneByOne(ctx, p.ps)
}

func (b *sinkBatch) post(ctx context.Context, body []byte) delivery.Attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.target, bytes.NewReader(body))
	if err != nil {
		return delivery.Attempt{Status: http.StatusBadRequest, Err: err}
	}
	req.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
	return b.e.do(req)
}

// oneByOne sends each event on its own and records its outcome.
func (b *sinkBatch) oneByOne(ctx context.Context, ps []*pending) {
	if len(ps) == 1 {
		ps[0].err = b.e.sendAlone(ctx, b.target, ps[0].ev)
		return
	}
	sem := make(chan struct{}, fallbackParallel)
	var wg sync.WaitGroup
	for _, p := range ps {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p.err = b.e.sendAlone(ctx, b.target, p.ev)
		})
	}
	wg.Wait()
}
