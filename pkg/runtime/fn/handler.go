package fn

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Handler is a function's logic: pure over typed events, one event in, the
// events it produces out. Transport, sinks and retries are not its concern.
//
// A Handler may also have any of the lifecycle methods func's wrapper calls
// on a function, with the same signatures, and EventFunction calls them in
// turn: Start(ctx, map[string]string) error once before the first event
// (read config, connect), Stop(ctx) error once at shutdown, and the probes
// Ready(ctx) (bool, error) and Alive(ctx) (bool, error).
type Handler interface {
	Handle(ctx context.Context, in event.Event) ([]Output, error)
}

// HandlerFunc adapts a plain func to Handler.
type HandlerFunc func(ctx context.Context, in event.Event) ([]Output, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, in event.Event) ([]Output, error) { return f(ctx, in) }

// BatchHandler is a Handler that can also take a batch at once (the sinks:
// one group-commit write for the whole batch; the processor and the
// converter: the events handled concurrently, see HandleEach). It answers
// for the whole batch: an error refuses every event in it, and the engine
// delivers them again one by one.
type BatchHandler interface {
	Handler
	HandleBatch(ctx context.Context, in []event.Event) ([]Output, error)
}

// The lifecycle of a function, as func's wrapper calls it; a Handler's
// lifecycle is the same.
type (
	starter interface {
		Start(ctx context.Context, cfg map[string]string) error
	}
	stopper interface {
		Stop(ctx context.Context) error
	}
	readier interface {
		Ready(ctx context.Context) (bool, error)
	}
	aliver interface {
		Alive(ctx context.Context) (bool, error)
	}
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
