// Package sink is the one batched sink: a fn.Handler that decodes events
// into items and writes them to a store with group commit (package batch),
// answering a delivery once its items are committed. A sink function is
// a name, its batch defaults, a way to open its store and a decoder:
//
//	sink.New("pgsink", pgsinkBatch, openJobs, decodeRow)
//
// Its batch settings come from <NAME>_BATCH_* (PGSINK_BATCH_MAX_ITEMS,
// ...), each one unset taking the sink's default; a Tuner (WithTuner) may
// change its batch size and linger while it runs.
package sink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Store is where a sink writes: a database table behind a small adapter.
// Write commits items at once, or none of them.
type Store[T any] interface {
	Write(ctx context.Context, items []T) error
	Close() error
}

// Decode appends the items an event holds to dst: any number, none for an
// event that changes nothing. An error refuses the event (give it a status
// with fn.Invalid and the like: a plain error answers 500, retried).
type Decode[T any] func(dst []T, in event.Event) ([]T, error)

// Sink is a group-commit sink of items of type T; it is a fn.BatchHandler
// with the lifecycle fn calls.
type Sink[T any] struct {
	name     string
	defaults batch.Config
	open     func(ctx context.Context) (Store[T], error)
	decode   Decode[T]

	cfg     batch.Config // defaults with <NAME>_BATCH_* applied, at Start
	tuner   Tuner
	store   Store[T]
	batcher *batch.Batcher[T]
	stop    func()
}

// Tuner drives a running sink's batch size and linger (live
// configuration, say). Start is given the batch settings from the
// environment, which stay the defaults, and returns the MaxItems and
// Linger in force, read as each batch starts (cheap, safe for concurrent
// use); Stop ends it after the sink's last write.
type Tuner interface {
	Start(env batch.Config) (func() batch.Tuning, error)
	Stop()
}

// New returns a sink that is not started: name names it in metrics, logs
// and its settings (<NAME>_BATCH_*); defaults is its group commit unless
// those say otherwise; open connects its store at Start (reading its own
// settings then).
func New[T any](name string, defaults batch.Config, open func(ctx context.Context) (Store[T], error), decode Decode[T]) *Sink[T] {
	return &Sink[T]{name: name, defaults: defaults, open: open, decode: decode}
}

// WithTuner makes t drive the sink's batch size and linger from Start on;
// call before Start.
func (s *Sink[T]) WithTuner(t Tuner) *Sink[T] {
	s.tuner = t
	return s
}

// Start reads the batch settings, opens the store, starts the tuner if
// any, then the batcher.
func (s *Sink[T]) Start(ctx context.Context, _ map[string]string) error {
	var env batch.Env
	if err := fn.Process(strings.ToUpper(s.name), &env); err != nil {
		return err
	}
	store, err := s.open(ctx)
	if err != nil {
		return err
	}
	s.cfg = env.Config(s.defaults)
	b := batch.New(s.cfg, store.Write)
	b.OnFlush(observe(s.name))
	if s.tuner != nil {
		tune, err := s.tuner.Start(s.cfg)
		if err != nil {
			_ = store.Close()
			return fmt.Errorf("%s batch tuning: %w", s.name, err)
		}
		b.Tune(tune)
	}
	s.store, s.batcher = store, b
	s.stop = b.Start()
	slog.Info("sink started", "function", s.name, "batch", s.cfg)
	return nil
}

// Stop writes what is waiting, then stops the tuner and closes the store.
func (s *Sink[T]) Stop(context.Context) error {
	if s.stop != nil {
		s.stop()
		if s.tuner != nil {
			s.tuner.Stop()
		}
	}
	if s.store != nil {
		return s.store.Close()
	}
	return nil
}

// Ready reports whether the sink is started.
func (s *Sink[T]) Ready(context.Context) (bool, error) { return s.batcher != nil, nil }

// Handle writes the event's items and returns once they are committed.
func (s *Sink[T]) Handle(ctx context.Context, in event.Event) ([]fn.Output, error) {
	items, err := s.decode(nil, in)
	if err != nil {
		return nil, err
	}
	end := s.writeSpans(ctx, []event.Event{in})
	err = s.write(ctx, items)
	end(err)
	return nil, err
}

// HandleBatch writes the items of every event of a batch and returns once
// they are committed; one invalid event refuses the whole batch before
// anything is written.
func (s *Sink[T]) HandleBatch(ctx context.Context, in []event.Event) ([]fn.Output, error) {
	items, err := decodeAll(in, s.decode)
	if err != nil {
		return nil, err
	}
	end := s.writeSpans(ctx, in)
	err = s.write(ctx, items)
	end(err)
	return nil, err
}

func (s *Sink[T]) write(ctx context.Context, items []T) error {
	if s.batcher == nil {
		return fn.Unavailable(fmt.Errorf("%s not started", s.name))
	}
	if err := s.batcher.Add(ctx, items...); err != nil {
		return fn.Unavailable(err)
	}
	return nil
}

// decodeAll decodes every event of a batch into one slice; the first that
// fails refuses the batch, named by its place and id (with decode's
// status).
func decodeAll[T any](in []event.Event, decode Decode[T]) ([]T, error) {
	var out []T
	for i := range in {
		var err error
		if out, err = decode(out, in[i]); err != nil {
			return nil, fmt.Errorf("event %d (id %s): %w", i, in[i].ID(), err)
		}
	}
	return out, nil
}
