package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config of a chaos run.
type Config struct {
	Root, Dir, Bin string // repository, state (JOBFLOW_DIR is Dir/engine), the jobflow binary
	Ports          Ports
	Duration       time.Duration // of the load; faults stop a little before
	JobRate        float64       // jobs per second
	MessageRate    float64       // dialogs requests per second
	Users          int
	Faults         int           // how many (at least one of each kind)
	Kinds          []string      // fault kinds to inject
	Gap            time.Duration // pause after a recovery before the next fault
	ServerDown     time.Duration // how long a restarted server stays down
	Recover        time.Duration // longest wait for a recovery (else the fault is reported unrecovered)
	Settle         time.Duration // longest wait after the load for the views to catch up
	Seed           uint64
	Out            io.Writer // progress
}

// Sizes are the named sizes: ci (make test, under 5 minutes) and full
// (make chaos, about 12 minutes).
func Sizes(name string) (Config, error) {
	switch name {
	case "ci":
		return Config{Duration: 150 * time.Second, JobRate: 10, MessageRate: 5, Users: 20, Faults: 6,
			Gap: 3 * time.Second, ServerDown: 2 * time.Second, Recover: 3 * time.Minute, Settle: 3 * time.Minute}, nil
	case "full":
		return Config{Duration: 10 * time.Minute, JobRate: 40, MessageRate: 20, Users: 100, Faults: 40,
			Gap: 5 * time.Second, ServerDown: 5 * time.Second, Recover: 3 * time.Minute, Settle: 5 * time.Minute}, nil
	}
	return Config{}, fmt.Errorf("size %q: want ci or full", name)
}

// Result of a run.
type Result struct {
	Faults   []Fault
	Orphans  []string // children alive after their engine was SIGKILLed
	Jobs     JobTally
	Counters CounterTally
	Settled  time.Duration // load end to every view caught up
	Verify   string        // jobflow verify all's output
	VerifyOK bool
	Started  time.Time
	Elapsed  time.Duration
}

// OK reports whether the run found nothing wrong.
func (r *Result) OK() bool {
	bad := len(r.Orphans) > 0 || !r.VerifyOK || r.Jobs.Lost+r.Jobs.Doubled > 0 ||
		r.Counters.LostMessages+r.Counters.LostReads+r.Counters.Lost+r.Counters.Doubled > 0
	for _, f := range r.Faults {
		bad = bad || f.Err != nil
	}
	return !bad
}

// Run starts the system, runs the load with faults, settles and checks.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	res := &Result{Started: time.Now()}
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Out, "%s chaos: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	sys := &System{Root: cfg.Root, Dir: cfg.Dir, Bin: cfg.Bin, Ports: cfg.Ports}
	defer sys.Close()
	say("servers under %s", cfg.Dir)
	if err := sys.StartServers(ctx); err != nil {
		return nil, err
	}
	say("engine: building and starting (log %s/engine.log)", cfg.Dir)
	if err := sys.StartEngine(ctx, 10*time.Minute); err != nil {
		return nil, err
	}
	dbs, err := openDBs(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer dbs.close()

	url := func(fn string) string { return fmt.Sprintf("http://127.0.0.1:%d", cfg.Ports.Functions[fn]) }
	jobs := NewJobs(url("receiver"), fmt.Sprintf("chaos-%d-%d", cfg.Seed, time.Now().UnixNano()), 2*time.Minute)
	counters := NewCounters(url("dialogs"), 2*time.Minute)
	if err := counters.Setup(ctx, cfg.Users); err != nil {
		return nil, err
	}
	pr := &prober{jobs: jobs, counters: counters, jobsDB: dbs.jobs, dialogsDB: dbs.dialogs,
		countersDB: dbs.counters, deadline: cfg.Recover}
	if pr.sender, pr.recipient = counters.CreateUser(ctx, "probe-from"), counters.CreateUser(ctx, "probe-to"); pr.recipient == 0 {
		return nil, errors.New("dialogs: probe users not created")
	}
	say("load: %.0f jobs/s, %.0f dialogs requests/s for %s; %d faults of %v", cfg.JobRate, cfg.MessageRate, cfg.Duration, cfg.Faults, cfg.Kinds)

	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	var wg sync.WaitGroup
	steady(loadCtx, &wg, cfg.JobRate, 32, func(ctx context.Context, _ *rand.Rand) { jobs.Submit(ctx) }, cfg.Seed+1)
	steady(loadCtx, &wg, cfg.MessageRate, 16, counters.Step, cfg.Seed+2)

	in := &injector{sys: sys, rng: rng, down: cfg.ServerDown, ready: 10 * time.Minute,
		orphan: func(pid int, name string) { res.Orphans = append(res.Orphans, fmt.Sprintf("%s (pid %d)", name, pid)) }}
	sleep(loadCtx, 10*time.Second) // warm: the load reaches every function first
	res.Faults = injectAll(loadCtx, cfg, in, pr, rng, say)
	<-loadCtx.Done()
	wg.Wait()

	say("load stopped: %d jobs and %d messages accepted; settling (at most %s)", len(jobs.accepted), counters.posts, cfg.Settle)
	end := time.Now()
	sctx, cancel := context.WithTimeout(ctx, cfg.Settle)
	settled := poll(sctx, func() bool {
		return jobs.Settled(sctx, dbs.jobs, dbs.ch) && countersSettled(sctx, counters, dbs)
	}) == nil
	cancel()
	res.Settled = time.Since(end)
	say("settled: %v after %s", settled, res.Settled.Round(time.Second))
	if res.Jobs, err = jobs.Tally(ctx, dbs.jobs, dbs.ch); err != nil {
		return res, err
	}
	if res.Counters, err = counters.Tally(ctx, dbs.dialogs, dbs.counters); err != nil {
		return res, err
	}
	res.Verify, res.VerifyOK = verifyAll(ctx, sys)
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

// injectAll injects the scheduled faults one after the other, each
// followed by its recovery, until the schedule or the load ends.
func injectAll(ctx context.Context, cfg Config, in *injector, pr *prober, rng *rand.Rand, say func(string, ...any)) []Fault {
	var out []Fault
	for _, kind := range schedule(rng, cfg.Kinds, cfg.Faults) {
		if ctx.Err() != nil {
			break
		}
		f := Fault{Kind: kind, At: time.Now()}
		f.Target, f.Err = in.inject(ctx, kind)
		if f.Err == nil {
			f.Recover, f.Err = pr.recovered(ctx, f.At)
		}
		if f.Err != nil && ctx.Err() != nil {
			break // the load ended during the fault: not counted
		}
		say("fault %-18s %-22s recovered in %-6s %v", f.Kind, f.Target, f.Recover.Round(100*time.Millisecond), errText(f.Err))
		out = append(out, f)
		sleep(ctx, cfg.Gap+time.Duration(rng.Int64N(int64(cfg.Gap)+1)))
	}
	return out
}

// steady runs fn rate times a second on up to workers goroutines until
// ctx ends; a tick that finds every worker busy is skipped (the load
// stays steady, it does not pile up behind an outage).
func steady(ctx context.Context, wg *sync.WaitGroup, rate float64, workers int, fn func(context.Context, *rand.Rand), seed uint64) {
	if rate <= 0 {
		return
	}
	ticks := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range ticks {
				fn(ctx, rng)
			}
		}()
	}
	go func() {
		defer close(ticks)
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ticks <- struct{}{}:
				default:
				}
			}
		}
	}()
}

type databases struct {
	jobs, dialogs, counters *pgxpool.Pool
	ch                      driver.Conn
}

func openDBs(ctx context.Context, sys *System) (*databases, error) {
	d := &databases{}
	var err error
	for db, p := range map[string]**pgxpool.Pool{"jobflow": &d.jobs, "dialogs": &d.dialogs, "counters": &d.counters} {
		if *p, err = pgxpool.New(ctx, sys.PostgresURL(db)); err != nil {
			return nil, fmt.Errorf("postgres %s: %w", db, err)
		}
	}
	if d.ch, err = clickhouse.Open(&clickhouse.Options{Addr: []string{sys.ClickHouseAddr()}}); err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return d, nil
}

func (d *databases) close() {
	d.jobs.Close()
	d.dialogs.Close()
	d.counters.Close()
	_ = d.ch.Close()
}

func countersSettled(ctx context.Context, c *Counters, d *databases) bool {
	t, err := c.Tally(ctx, d.dialogs, d.counters)
	return err == nil && t.Lost+t.Doubled+t.LostMessages+t.LostReads == 0
}

// verifyAll runs `jobflow verify all` against the system.
func verifyAll(ctx context.Context, sys *System) (string, bool) {
	cmd := exec.CommandContext(ctx, sys.Bin, "verify", "all")
	cmd.Dir = sys.Root
	cmd.Env = append(os.Environ(), sys.env()...)
	cmd.Env = append(cmd.Env, "KAFKA_BROKERS="+sys.KafkaAddr(),
		"JOBFLOW_DIALOGS_URL="+sys.PostgresURL("dialogs"), "JOBFLOW_COUNTERS_URL="+sys.PostgresURL("counters"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "ERROR: " + err.Error()
}
