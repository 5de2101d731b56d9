package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/scaler"
)

// partitionsTimeout is how long a source may wait for its partitions.
const partitionsTimeout = 30 * time.Second

// Sources returns the running sources.
func (e *Engine) Sources() []*kafkasource.Source {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*kafkasource.Source(nil), e.sources...)
}

// sender is the engine's one delivery sender: to a function, through its
// pool in-process (the activator's logic without its HTTP hop); to sinks
// and brokers over HTTP.
func (e *Engine) sender() *kafkasource.Sender {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.send == nil {
		pools := make([]*scaler.Pool, 0, len(e.pools))
		for _, p := range e.pools {
			pools = append(pools, p)
		}
		e.send = kafkasource.NewSenderWith(scaler.Transport(kafkasource.NewTransport(), pools...))
	}
	return e.send
}

// startSources starts the KafkaSources and waits until each has its
// partitions.
func (e *Engine) startSources(l *layer, ss []plan.Source, brokers []string) error {
	sender := e.sender()
	var started []*kafkasource.Source
	for _, s := range ss {
		src, err := kafkasource.New(kafkasource.Config{
			Name: s.Name, Namespace: s.Namespace, Brokers: brokers, Topics: s.Topics,
			Group: s.Group, InitialOffset: s.InitialOffset, Ordered: s.Ordered, ByKey: s.ByKey,
			MaxInFlight: s.MaxInFlight, BatchSize: s.BatchSize, CommitInterval: e.cfg.CommitInterval,
			Retrier: kafkasource.Retrier{Sender: sender, Policy: s.Policy, Target: s.Target, DeadLetter: s.DeadLetter},
		}, e.log)
		if err != nil {
			return fmt.Errorf("kafkasource %s: %w", s.Name, err)
		}
		e.mu.Lock()
		e.sources = append(e.sources, src)
		e.mu.Unlock()
		e.runSource(l, src)
		started = append(started, src)
	}
	return waitPartitions("kafkasource", started)
}

// runSource runs src in the layer until it stops.
func (e *Engine) runSource(l *layer, src *kafkasource.Source) {
	l.run(func(ctx context.Context) {
		if err := src.Run(ctx); err != nil {
			e.log.Error("source stopped", "source", src.Name(), "err", err)
		}
	})
}

// waitPartitions waits until each source has its partitions.
func waitPartitions(kind string, ss []*kafkasource.Source) error {
	for _, s := range ss {
		select {
		case <-s.Ready():
		case <-time.After(partitionsTimeout):
			return fmt.Errorf("%s %s: no partitions assigned after %s", kind, s.Name(), partitionsTimeout)
		}
	}
	return nil
}
