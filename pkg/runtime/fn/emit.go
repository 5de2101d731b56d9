package fn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
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
type Emitter struct {
	function string
	sinks    map[string]string
	client   *http.Client
}

// NewEmitter resolves the addresses of the default output and of the named
// outputs from the environment. A named output without an address is an
// error: the function would otherwise drop events.
func NewEmitter(function string, named ...string) (*Emitter, error) {
	e := &Emitter{
		function: function,
		sinks:    map[string]string{},
		client:   &http.Client{Timeout: 30 * time.Second, Transport: newTransport()},
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
	return e, nil
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
	target := e.sinks[output]
	if target == "" {
		return fmt.Errorf("no sink for output %q (%s is empty)", output, sinkEnv(output))
	}
	ctx, span := tracing.Start(ctx, "emit "+sinkEnv(output), trace.SpanKindProducer, ev.Subject())
	defer span.End()
	tracing.ToEvent(ctx, &ev) // the trace goes on in Kafka as ce_traceparent
	a := emitRetry.Do(ctx, func(ctx context.Context, _ int) delivery.Attempt { return e.sendOnce(ctx, target, ev) })
	if a.OK() {
		emitted.WithLabelValues(e.function, output, "ok").Inc()
		return nil
	}
	emitted.WithLabelValues(e.function, output, "error").Inc()
	err := a.Err
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return Unavailable(fmt.Errorf("emit %s to %s: %w", ev.Type(), target, err))
}

func (e *Emitter) sendOnce(ctx context.Context, target string, ev event.Event) delivery.Attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return delivery.Attempt{Status: http.StatusBadRequest, Err: err} // a bad K_SINK: final
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
		return delivery.Attempt{Status: http.StatusBadRequest, Err: fmt.Errorf("encode event: %w", err)}
	}
	tracing.ToHeader(ctx, req.Header)
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
