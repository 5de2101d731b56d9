package engine

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/scaler"
)

// Runner is a function's pool (scaler.Pool) or an adapter's process
// (procs.Process), as tests see it.
type Runner interface {
	URL() string     // where it is served (a function: its activator)
	Ready() bool     // a function: its activator serves, with or without instances
	Restarts() int64 // restarts after crashes
	Kill() error     // kills a running process (a function: one instance)
}

// Function returns a function's pool or an adapter's process, or nil
// (tests kill them).
func (e *Engine) Function(name string) Runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.pools[name]; p != nil {
		return p
	}
	if p := e.adapters[name]; p != nil {
		return p
	}
	return nil
}

// Pool returns the pool of a function, or nil.
func (e *Engine) Pool(name string) *scaler.Pool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pools[name]
}

// startFunctions starts one pool per function: its activator serves on
// the listener reserved for it at once, and its instances start as its
// scale settings say (min-scale, else on the first request). Startup
// waits only for functions with min-scale above zero.
func (e *Engine) startFunctions(ctx context.Context, l *layer, fs []plan.Function, lns *listeners) error {
	waitFor := map[string]*scaler.Pool{}
	for _, f := range fs {
		p, err := e.startPool(l, f, lns)
		if err != nil {
			return fmt.Errorf("function %s: %w", f.Name, err)
		}
		if f.Scale.MinScale > 0 {
			waitFor[f.Name] = p
		}
	}
	deadline := time.Now().Add(e.cfg.StartTimeout)
	for name, p := range waitFor {
		if err := e.waitStarted(ctx, name, p, deadline); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) startPool(l *layer, f plan.Function, lns *listeners) (*scaler.Pool, error) {
	logf, err := e.openLog(f.Name)
	if err != nil {
		return nil, err
	}
	p := scaler.New(scaler.Spec{
		Name: f.Name, Bin: f.Bin, Env: append(append(os.Environ(), e.traceEnv()...), f.Env...), Log: logf,
		Addr: f.Addr, Listener: lns.takeFunction(f.Name),
		Scale: f.Scale, HoldTimeout: e.cfg.StartTimeout,
	}, e.log)
	if err := p.Listen(); err != nil {
		logf.Close()
		return nil, err
	}
	e.mu.Lock()
	e.pools[f.Name] = p
	e.mu.Unlock()
	l.run(func(ctx context.Context) {
		defer logf.Close()
		if err := p.Run(ctx); err != nil {
			e.log.Error("function pool stopped", "function", f.Name, "err", err)
		}
	})
	return p, nil
}

// waitStarted waits for a pool's first instance to be ready; a function
// that keeps exiting fails the startup with the end of its log.
func (e *Engine) waitStarted(ctx context.Context, name string, p *scaler.Pool, deadline time.Time) error {
	logPath := e.state("logs", name+".log")
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.Started():
			return nil
		case <-tick.C:
			if p.Restarts() >= 3 {
				return fmt.Errorf("function %s keeps exiting before it is ready; the end of %s:\n%s", name, logPath, tail(logPath, 15))
			}
		case <-timeout.C:
			return fmt.Errorf("function %s not ready after %s: see %s", name, e.cfg.StartTimeout, logPath)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// openLog opens JOBFLOW_DIR/logs/<name>.log for appending.
func (e *Engine) openLog(name string) (*os.File, error) {
	f, err := os.OpenFile(e.state("logs", name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", name, err)
	}
	return f, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
