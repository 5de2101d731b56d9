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

// startSources starts the KafkaSources and waits until each has its
// partitions. Deliveries to a function go to its pool in-process (the
// activator's logic without its HTTP hop); to sinks over HTTP.
func (e *Engine) startSources(l *layer, ss []plan.Source, brokers []string) error {
	e.mu.Lock()
	pools := make([]*scaler.Pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	e.mu.Unlock()
	sender := kafkasource.NewSenderWith(scaler.Transport(kafkasource.NewTransport(), pools...))
	for _, s := range ss {
		src, err := kafkasource.New(kafkasource.Config{
			Name: s.Name, Namespace: s.Namespace, Brokers: brokers, Topics: s.Topics,
			Group: s.Group, InitialOffset: s.InitialOffset, Ordered: s.Ordered,
			MaxInFlight: s.MaxInFlight, BatchSize: s.BatchSize, CommitInterval: e.cfg.CommitInterval,
			Retrier: kafkasource.Retrier{Sender: sender, Policy: s.Policy, Target: s.Target, DeadLetter: s.DeadLetter},
		}, e.log)
		if err != nil {
			return fmt.Errorf("kafkasource %s: %w", s.Name, err)
		}
		e.mu.Lock()
		e.sources = append(e.sources, src)
		e.mu.Unlock()
		l.run(func(ctx context.Context) {
			if err := src.Run(ctx); err != nil {
				e.log.Error("source stopped", "source", src.Name(), "err", err)
			}
		})
	}
	for _, s := range e.Sources() {
		select {
		case <-s.Ready():
		case <-time.After(partitionsTimeout):
			return fmt.Errorf("kafkasource %s: no partitions assigned after %s", s.Name(), partitionsTimeout)
		}
	}
	return nil
}
