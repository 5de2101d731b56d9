package engine

import (
	"context"
	"fmt"
	"os"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/procs"
)

// startAdapters runs the long-running processes of adapters/ (the CDC
// source), supervised like a function's instance but never scaled. They
// start after the functions and sources: an adapter may need functions
// running first (jobflow.dev/after).
func (e *Engine) startAdapters(ctx context.Context, l *layer, as []plan.Adapter) error {
	for _, a := range as {
		if err := e.wakeAll(ctx, a); err != nil {
			return err
		}
		logf, err := e.openLog(a.Name)
		if err != nil {
			return err
		}
		p := procs.New(procs.Spec{Name: a.Name, Bin: a.Bin, Env: append(os.Environ(), a.Env...), Port: a.Port, Log: logf}, e.log)
		e.mu.Lock()
		e.adapters[a.Name] = p
		e.mu.Unlock()
		l.run(func(ctx context.Context) {
			defer logf.Close()
			_ = p.Run(ctx)
		})
	}
	return nil
}

// wakeAll starts an instance of each function the adapter runs after
// (they scale to zero when idle, so "running" means woken now); a function
// JOBFLOW_FUNCTIONS left out is not waited for.
func (e *Engine) wakeAll(ctx context.Context, a plan.Adapter) error {
	for _, name := range a.After {
		p := e.Pool(name)
		if p == nil {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, e.cfg.StartTimeout)
		err := p.Wake(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s (adapter %s runs after it): %w: see %s", name, a.Name, err, e.state("logs", name+".log"))
		}
	}
	return nil
}
