package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
)

// build builds the plan's functions and adapters into JOBFLOW_DIR/bin.
func (e *Engine) build(ctx context.Context, p *plan.Plan) error {
	if e.cfg.SkipBuild {
		return nil
	}
	start := time.Now()
	for _, f := range p.Functions {
		if err := e.buildBinary(ctx, f.Name, f.Dir, f.Package, f.Bin); err != nil {
			return err
		}
	}
	for _, a := range p.Adapters {
		if err := e.buildBinary(ctx, a.Name, a.Dir, a.Package, a.Bin); err != nil {
			return err
		}
	}
	e.say("build: done in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// buildBinary builds pkg in dir; each function is its own module, so a
// go.work around the repository must not decide its dependencies.
func (e *Engine) buildBinary(ctx context.Context, name, dir, pkg, bin string) error {
	e.say("build: %s", name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", name, err, out)
	}
	return nil
}
