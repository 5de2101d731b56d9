package fn

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
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
	name    string
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
	return &EventFunction{name: name, build: build, named: named}
}

// Start resolves sinks, then builds and starts the handler; cfg is passed
// on to the handler's Start.
func (f *EventFunction) Start(ctx context.Context, cfg map[string]string) error {
	em, err := NewEmitter(f.name, f.named...)
	if err != nil {
		return err
	}
	h, err := f.build()
	if err != nil {
		return err
	}
	if s, ok := h.(starter); ok {
		if err := s.Start(ctx, cfg); err != nil {
			return fmt.Errorf("start %s: %w", f.name, err)
		}
	}
	f.handler, f.emitter = h, em
	return nil
}

// Stop stops the emitter, then the handler.
func (f *EventFunction) Stop(ctx context.Context) error {
	if f.emitter != nil {
		f.emitter.Close()
	}
	if s, ok := f.handler.(stopper); ok {
		return s.Stop(ctx)
	}
	return nil
}

// Ready is the readiness probe: started, and the handler ready.
func (f *EventFunction) Ready(ctx context.Context) (bool, error) {
	if f.emitter == nil {
		return false, errors.New("not started")
	}
	if r, ok := f.handler.(readier); ok {
		return r.Ready(ctx)
	}
	return true, nil
}

// Alive is the liveness probe: the handler's, else alive.
func (f *EventFunction) Alive(ctx context.Context) (bool, error) {
	if a, ok := f.handler.(aliver); ok {
		return a.Alive(ctx)
	}
	return true, nil
}

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
	sent := outs[:0:0]
	for i := range outs {
		o := outs[i]
		if !f.emitter.HasSink(o.To) {
			if o.To != DefaultOutput || reply != nil {
				return nil, fmt.Errorf("output %q has no sink and cannot be the reply", o.To)
			}
			reply = &o.Event
			continue
		}
		sent = append(sent, o)
	}
	if len(sent) > 0 {
		if err := f.emitter.SendAll(ctx, sent); err != nil {
			return nil, err
		}
	}
	return reply, nil
}

// errNoBatch is the answer (415) of a function that takes one event per request.
var errNoBatch = WithStatus(http.StatusUnsupportedMediaType,
	errors.New("this function takes one CloudEvent per request, not a batch"))

// handleBatch runs a BatchHandler over the whole batch and emits its
// outputs; a handler that takes one event at a time answers errNoBatch.
// A batch has no reply: every output needs a sink. (Unexported: batches
// are the local engine's, which func's wrapper never sees; Serve finds it
// on any type that embeds *EventFunction.)
func (f *EventFunction) handleBatch(ctx context.Context, in []event.Event) error {
	if f.emitter == nil {
		return Unavailable(errors.New("function not started"))
	}
	bh, ok := f.handler.(BatchHandler)
	if !ok {
		return errNoBatch
	}
	outs, err := bh.HandleBatch(ctx, in)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if !f.emitter.HasSink(o.To) {
			return fmt.Errorf("output %q has no sink: a batch cannot be answered with replies", o.To)
		}
	}
	if len(outs) == 0 {
		return nil
	}
	// One SendAll: a batch's outputs to one sink go out as one group.
	return f.emitter.SendAll(ctx, outs)
}
