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
)

// DefaultOutput names the output that goes to K_SINK.
const DefaultOutput = ""

// Output is one event a handler emits, and the output it goes to:
// DefaultOutput (K_SINK) or a named output NAME whose address is the
// environment variable K_SINK_NAME.
type Output struct {
	To    string
	Event event.Event
}

// Emit is the usual single output to K_SINK.
func Emit(e event.Event) []Output { return []Output{{To: DefaultOutput, Event: e}} }

// SinkEnv is the environment variable holding the address of an output.
func SinkEnv(output string) string {
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
	attempts int
	backoff  time.Duration
}

// NewEmitter resolves the addresses of the default output and of the named
// outputs from the environment. A named output without an address is an
// error: the function would otherwise drop events.
func NewEmitter(function string, named ...string) (*Emitter, error) {
	e := &Emitter{
		function: function,
		sinks:    map[string]string{},
		client:   &http.Client{Timeout: 30 * time.Second, Transport: newTransport()},
		attempts: 3,
		backoff:  50 * time.Millisecond,
	}
	if s := os.Getenv(SinkEnv(DefaultOutput)); s != "" {
		e.sinks[DefaultOutput] = s
	}
	for _, name := range named {
		s := os.Getenv(SinkEnv(name))
		if s == "" {
			return nil, fmt.Errorf("output %q needs its sink address in %s", name, SinkEnv(name))
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

// Send delivers ev to the output's sink, retrying a few times with a short
// backoff on transient failures (no response, 5xx, 429).
func (e *Emitter) Send(ctx context.Context, output string, ev event.Event) error {
	target := e.sinks[output]
	if target == "" {
		return fmt.Errorf("no sink for output %q (%s is empty)", output, SinkEnv(output))
	}
	var err error
	for attempt := 1; attempt <= e.attempts; attempt++ {
		var retry bool
		retry, err = e.sendOnce(ctx, target, ev)
		if err == nil {
			emitted.WithLabelValues(e.function, output, "ok").Inc()
			return nil
		}
		if !retry || attempt == e.attempts {
			break
		}
		select {
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
			attempt = e.attempts
		case <-time.After(e.backoff * time.Duration(attempt)):
		}
	}
	emitted.WithLabelValues(e.function, output, "error").Inc()
	return Unavailable(fmt.Errorf("emit %s to %s: %w", ev.Type(), target, err))
}

func (e *Emitter) sendOnce(ctx context.Context, target string, ev event.Event) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return false, err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
		return false, fmt.Errorf("encode event: %w", err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return true, err
	}
	defer drain(resp)
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
		fmt.Errorf("sink answered %s", resp.Status)
}
