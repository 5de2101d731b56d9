package fn

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Handler is a function's logic: pure over typed events, one event in, the
// events it produces out. Transport, sinks and config are not its concern.
type Handler interface {
	Handle(ctx context.Context, in event.Event) ([]Output, error)
}

// HandlerFunc adapts a plain func to Handler.
type HandlerFunc func(ctx context.Context, in event.Event) ([]Output, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, in event.Event) ([]Output, error) { return f(ctx, in) }

// Lifecycle hooks a Handler may implement; the runtime calls them.
type (
	// Opener is called once before the first event (connect databases, read config).
	Opener interface {
		Open(ctx context.Context) error
	}
	// Closer is called once at shutdown.
	Closer interface {
		Close(ctx context.Context) error
	}
	// Readier reports whether the handler can take events now.
	Readier interface {
		Ready(ctx context.Context) (bool, error)
	}
)

// EventFunction turns a Handler into a Knative Functions instanced
// CloudEvent function: embed *EventFunction in the function's type and its
// Start, Stop, Ready, Alive and Handle methods are the ones func's wrapper
// (on Knative) and Main (locally) call.
//
// Handle applies the emit rule: outputs whose sink is set (K_SINK,
// K_SINK_<NAME>) are sent there before Handle returns, so the caller's
// delivery is acknowledged only after every sink accepted its event; with no
// K_SINK the default output is the reply.
type EventFunction struct {
	Name    string
	build   func() (Handler, error)
	handler Handler
	named   []string
	emitter *Emitter
}

// NewEventFunction wraps the handler that build makes at Start (reading its
// config then, not at construction, as func's wrapper expects). named lists
// the outputs other than the default one that the handler may emit to; each
// needs K_SINK_<NAME> at Start.
func NewEventFunction(name string, build func() (Handler, error), named ...string) *EventFunction {
	return &EventFunction{Name: name, build: build, named: named}
}

// Start resolves sinks, builds and opens the handler. The map is the
// environment func's wrapper passes; config is read with envconfig instead.
func (f *EventFunction) Start(ctx context.Context, _ map[string]string) error {
	em, err := NewEmitter(f.Name, f.named...)
	if err != nil {
		return err
	}
	h, err := f.build()
	if err != nil {
		return err
	}
	f.handler = h
	f.emitter = em
	if o, ok := f.handler.(Opener); ok {
		if err := o.Open(ctx); err != nil {
			return fmt.Errorf("open %s: %w", f.Name, err)
		}
	}
	return nil
}

// Stop closes the handler.
func (f *EventFunction) Stop(ctx context.Context) error {
	if f.handler == nil {
		return nil
	}
	if c, ok := f.handler.(Closer); ok {
		return c.Close(ctx)
	}
	return nil
}

// Ready is the readiness probe.
func (f *EventFunction) Ready(ctx context.Context) (bool, error) {
	if f.emitter == nil {
		return false, errors.New("not started")
	}
	if r, ok := f.handler.(Readier); ok {
		return r.Ready(ctx)
	}
	return true, nil
}

// Alive is the liveness probe.
func (f *EventFunction) Alive(context.Context) (bool, error) { return true, nil }

// Handle runs the handler and emits its outputs.
func (f *EventFunction) Handle(ctx context.Context, in event.Event) (*event.Event, error) {
	if f.emitter == nil {
		return nil, Unavailable(errors.New("function not started"))
	}
	outs, err := f.handler.Handle(ctx, in)
	if err != nil {
		return nil, err
	}
	var reply *event.Event
	for i := range outs {
		o := outs[i]
		if !f.emitter.HasSink(o.To) {
			if o.To != DefaultOutput || reply != nil {
				return nil, fmt.Errorf("output %q has no sink and cannot be the reply", o.To)
			}
			reply = &o.Event
			continue
		}
		if err := f.emitter.Send(ctx, o.To, o.Event); err != nil {
			return nil, err
		}
	}
	return reply, nil
}
