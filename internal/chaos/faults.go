package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The fault kinds.
const (
	KillFunction      = "kill-function"      // SIGKILL a random function instance
	KillCDC           = "kill-cdc"           // SIGKILL the CDC source (adapter jobflow-cdc)
	KillEngine        = "kill-engine"        // SIGKILL jobflow up, start it again on the same JOBFLOW_DIR
	RestartPostgres   = "restart-postgres"   // pg_ctl stop -m fast, start
	RestartClickHouse = "restart-clickhouse" // SIGTERM the server, start it again
)

// Kinds are every fault kind, in the table's order.
var Kinds = []string{KillFunction, KillCDC, KillEngine, RestartPostgres, RestartClickHouse}

// ParseKinds reads a comma-separated list of kinds ("all": every one,
// "none": no fault).
func ParseKinds(s string) ([]string, error) {
	switch s {
	case "", "all":
		return Kinds, nil
	case "none":
		return nil, nil
	}
	var ks []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if !contains(Kinds, k) {
			return nil, fmt.Errorf("fault %q: want one of %s", k, strings.Join(Kinds, ", "))
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// Fault is one injected fault and what followed.
type Fault struct {
	Kind, Target string
	At           time.Time
	Recover      time.Duration // fault to the pipeline delivering again
	Err          error         // the fault could not be injected, or the system did not recover
}

// injector injects faults into a System.
type injector struct {
	sys    *System
	rng    *rand.Rand
	down   time.Duration // how long a restarted server stays down
	ready  time.Duration // how long an engine may take to start
	orphan func(pid int, name string)
}

// inject injects one fault of kind and returns when it is in place (a
// restarted server or engine answering again).
func (in *injector) inject(ctx context.Context, kind string) (target string, err error) {
	switch kind {
	case KillFunction:
		return in.killFunction(ctx)
	case KillCDC:
		return in.killAdapter(ctx, "jobflow-cdc")
	case KillEngine:
		return "jobflow up", in.killEngine(ctx)
	case RestartPostgres:
		return "postgresql", in.sys.RestartPostgres(ctx, in.down)
	case RestartClickHouse:
		return "clickhouse", in.sys.RestartClickHouse(ctx, in.down)
	}
	return "", fmt.Errorf("unknown fault %q", kind)
}

// killFunction SIGKILLs a random running instance of a random function.
func (in *injector) killFunction(ctx context.Context) (string, error) {
	st, err := in.sys.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("status: %w", err)
	}
	var targets []string
	pids := map[string]int{}
	for name, f := range st.Functions {
		if f.Scale == nil {
			continue
		}
		for _, i := range f.Scale.PerInstance {
			if i.PID > 0 {
				t := fmt.Sprintf("%s/%d", name, i.Slot)
				targets = append(targets, t)
				pids[t] = i.PID
			}
		}
	}
	if len(targets) == 0 {
		return "", errors.New("no function instance running")
	}
	sort.Strings(targets)
	t := targets[in.rng.IntN(len(targets))]
	return t, kill(pids[t])
}

// killAdapter SIGKILLs an adapter's process; the engine restarts it.
func (in *injector) killAdapter(ctx context.Context, name string) (string, error) {
	st, err := in.sys.Status(ctx)
	if err != nil {
		return name, fmt.Errorf("status: %w", err)
	}
	pid := st.Functions[name].PID
	if pid == 0 {
		return name, fmt.Errorf("%s is not running", name)
	}
	return name, kill(pid)
}

// killEngine SIGKILLs the engine, checks its children die with it
// (Pdeathsig), and starts it again on the same JOBFLOW_DIR.
func (in *injector) killEngine(ctx context.Context) error {
	st, err := in.sys.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	children := Children(st)
	if err := in.sys.KillEngine(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for pid, name := range children {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			in.orphan(pid, name)
			_ = kill(pid) // ours, left behind: it would hold its port
		}
	}
	return in.sys.StartEngine(ctx, in.ready)
}

func kill(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}

// schedule is the order of faults: every kind once (shuffled), then
// random kinds, n in all (at least one of each).
func schedule(rng *rand.Rand, kinds []string, n int) []string {
	out := append([]string(nil), kinds...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for len(out) < n && len(kinds) > 0 {
		out = append(out, kinds[rng.IntN(len(kinds))])
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
