package engine

import (
	"context"
	"fmt"

	"github.com/jobflow/jobflow/internal/pingsource"
)

// startPings fires the PingSources with the engine's sender until the
// layer stops. It starts after the functions, sources and triggers, so
// that the first ping finds what it is sent to running.
func (e *Engine) startPings(l *layer, pings []pingsource.Ping) error {
	if len(pings) == 0 {
		return nil
	}
	r, err := pingsource.New(pings, e.sender(), e.log)
	if err != nil {
		return fmt.Errorf("pingsources: %w", err)
	}
	e.mu.Lock()
	e.pings = r
	e.mu.Unlock()
	l.run(func(ctx context.Context) { _ = r.Run(ctx) })
	return nil
}
