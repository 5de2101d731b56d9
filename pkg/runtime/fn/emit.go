package fn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// sinkEnv is the environment variable holding the address of an output.
func sinkEnv(output string) string {
	if output == DefaultOutput {
		return "K_SINK"
	}
	return "K_SINK_" + strings.ToUpper(output)
}

// Emitter sends events to sinks over HTTP in CloudEvents binary mode.
// A send succeeds only on a 2xx from the sink (a KafkaSink answers 202 once
// the record is written), so a caller that acknowledges its own delivery
// after Send has never lost an event.
//
// When the local engine asks for it (JOBFLOW_EMIT_BATCH, see EmitConfig),
// concurrent sends to one sink are group-committed: they go out together as
// one CloudEvents batch request, and each caller returns once its batch was
// acknowledged (emitbatch.go). On Knative, whose KafkaSink takes one event
// per request, every event goes alone.
type Emitter struct {
	function string
	sinks    map[string]string
	client   *http.Client
	batches  map[string]*sinkBatch // by output; none unless batching
}

// NewEmitter resolves the addresses of the default output and of the named
// outputs from the environment. A named output without an address is an
// error: the function would otherwise drop events. Close stops it.
func NewEmitter(function string, named ...string) (*Emitter, error) {
	var cfg EmitConfig
	if err := Process("", &cfg); err != nil {
		return nil, err
	}
	e := &Emitter{
		function: function,
		sinks:    map[string]string{},
		client:   &http.Client{Timeout: 30 * time.Second, Transport: newTransport()},
		batches:  map[string]*sinkBatch{},
	}
	if s := os.Getenv(sinkEnv(DefaultOutput)); s != "" {
		e.sinks[DefaultOutput] = s
	}
	for _, name := range named {
		s := os.Getenv(sinkEnv(name))
		if s == "" {
			return nil, fmt.Errorf("output %q needs its sink address in %s", name, sinkEnv(name))
		}
		e.sinks[name] = s
	}
	if cfg.Batch {
		for output, target := range e.sinks {
			e.batches[output] = newSinkBatch(e, output, target, cfg)
		}
	}
	return e, nil
}

// Close stops the emitter's batchers; sends under way finish first.
func (e *Emitter) Close() {
	for _, b := range e.batches {
		b.stop()
	}
}

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return t
}

// HasSink reports whether an output has an address (else it is a reply).
func (e *Emitter) HasSink(output string) bool { return e.sinks[output] != "" }

// emitRetry is how an emit is retried: a few quick tries with Knative's
// rule. The emit is part of a delivery that the engine retries itself with
// the source's policy, so it gives up soon and answers 503.
var emitRetry = delivery.Policy{Retry: 2, Backoff: delivery.Linear, Delay: 50 * time.Millisecond}

// Send delivers ev to the output's sink, retrying as emitRetry says.
func (e *Emitter) Send(ctx context.Context, output string, ev event.Event) error {
	return e.SendAll(ctx, []Output{{To: output, Event: ev}})
}

// SendAll delivers every output to its sink and returns once all were
// accepted, or with the first failure (503: the caller's delivery is
// retried, and the sinks take the events sent again as duplicates). The
// outputs of one sink go together (one batch when batching), the sinks
// in parallel.
func (e *Emitter) SendAll(ctx context.Context, outs []Output) error {
	byOutput := map[string][]event.Event{}
	var order []string
	for _, o := range outs {
		if e.sinks[o.To] == "" {
			return fmt.Errorf("no sink for output %q (%s is empty)", o.To, sinkEnv(o.To))
		}
		if _, seen := byOutput[o.To]; !seen {
			order = append(order, o.To)
		}
		byOutput[o.To] = append(byOutput[o.To], o.Event)
	}
	if len(order) == 1 {
		return e.sendOutput(ctx, order[0], byOutput[order[0]])
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, output := range order {
		wg.Go(func() { errs[i] = e.sendOutput(ctx, output, byOutput[output]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sendOutput sends evs to one output's sink: batched if it batches, else
// one request each.
func (e *Emitter) sendOutput(ctx context.Context, output string, evs []event.Event) error {
	target := e.sinks[output]
	ctx, span := tracing.Start(ctx, "emit "+sinkEnv(output), trace.SpanKindProducer, evs[0].Subject())
	defer span.End()
	for i := range evs {
		tracing.ToEvent(ctx, &evs[i]) // the trace goes on in Kafka as ce_traceparent
	}
	var errs []error
	if b := e.batches[output]; b != nil {
		errs = b.send(ctx, evs)
	} else {
		errs = make([]error, len(evs))
		for i := range evs {
			if errs[i] = e.sendAlone(ctx, target, &evs[i]); errs[i] != nil {
				break // the delivery fails: the rest is sent again with it
			}
		}
	}
	for i, err := range errs {
		if err != nil {
			emitted.WithLabelValues(e.function, output, "error").Inc()
			if ctx.Err() != nil {
				err = errors.Join(err, ctx.Err())
			}
			return Unavailable(fmt.Errorf("emit %s to %s: %w", evs[i].Type(), target, err))
		}
	}
	emitted.WithLabelValues(e.function, output, "ok").Add(float64(len(evs)))
	return nil
}

// sendAlone sends one event in its own request, with emitRetry's retries.
func (e *Emitter) sendAlone(ctx context.Context, target string, ev *event.Event) error {
	return emitRetry.Do(ctx, func(ctx context.Context, _ int) delivery.Attempt { return e.sendOnce(ctx, target, ev) }).Err
}

func (e *Emitter) sendOnce(ctx context.Context, target string, ev *event.Event) delivery.Attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return delivery.Attempt{Status: http.StatusBadRequest, Err: err} // a bad K_SINK: final
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(ev), req); err != nil {
		return delivery.Attempt{Status: http.StatusBadRequest, Err: fmt.Errorf("encode event: %w", err)}
	}
	tracing.ToHeader(ctx, req.Header)
	return e.do(req)
}

// do sends req and makes its answer an attempt: a 2xx succeeds.
func (e *Emitter) do(req *http.Request) delivery.Attempt {
	resp, err := e.client.Do(req)
	if err != nil {
		return delivery.Failed(err)
	}
	defer drain(resp)
	if resp.StatusCode/100 == 2 {
		return delivery.Attempt{Status: resp.StatusCode}
	}
	return delivery.Attempt{Status: resp.StatusCode, Err: fmt.Errorf("sink answered %s", resp.Status)}
}
