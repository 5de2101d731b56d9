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
	"path/filepath"
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
	OrderRate      float64       // orders requests per second (0: no orders load)
	ConfigRate     float64       // configuration pushes per second (0: none)
	Users          int           // dialogs users, and customers
	Couriers       int
	Faults         int           // how many (at least one of each kind)
	Kinds          []string      // fault kinds to inject
	Gap            time.Duration // pause after a recovery before the next fault
	ServerDown     time.Duration // how long a restarted server stays down
	Recover        time.Duration // longest wait for a recovery (else the fault is reported unrecovered)
	Settle         time.Duration // longest wait after the load for the views to catch up
	Seed           uint64
	Out            io.Writer // progress
}

// Sizes are the named sizes: ci (make test: 2 minutes of load, one fault
// of each kind) and full (make chaos: 10 minutes of load, up to 40 faults).
func Sizes(name string) (Config, error) {
	switch name {
	case "ci":
		return Config{Duration: 120 * time.Second, JobRate: 10, MessageRate: 5, OrderRate: 2, ConfigRate: 0.3, Users: 20, Couriers: 10, Faults: 5,
			Gap: 3 * time.Second, ServerDown: 2 * time.Second, Recover: 3 * time.Minute, Settle: 3 * time.Minute}, nil
	case "full":
		return Config{Duration: 10 * time.Minute, JobRate: 40, MessageRate: 20, OrderRate: 5, ConfigRate: 0.5, Users: 100, Couriers: 50, Faults: 40,
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
	Orders   *OrderTally   // nil: no orders load
	Config   *ConfigTally  // nil: no configuration load
	Refused  []string      // the first requests refused after their retries
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
	if o := r.Orders; o != nil {
		bad = bad || o.Lost > 0 || o.DepositsLost+o.DepositsDoubled > 0
	}
	if c := r.Config; c != nil {
		bad = bad || !c.AtHead
	}
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
	l, err := setupLoads(ctx, cfg, dbs)
	if err != nil {
		return nil, err
	}
	say("load: %.0f jobs/s, %.0f dialogs and %.0f orders requests/s for %s; %d faults of %v",
		cfg.JobRate, cfg.MessageRate, cfg.OrderRate, cfg.Duration, cfg.Faults, cfg.Kinds)
	// The load runs for Duration, and on until every kind was injected
	// once (a slow machine recovers slowly).
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	everyKind := make(chan struct{})
	go func() {
		sleep(ctx, cfg.Duration)
		select {
		case <-everyKind:
		case <-ctx.Done():
		}
		stopLoad()
	}()
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	var wg sync.WaitGroup
	// Requests under way when the load stops are seen through (ctx).
	steady(loadCtx, ctx, &wg, cfg.JobRate, 32, func(ctx context.Context, _ *rand.Rand) { l.jobs.Submit(ctx) }, cfg.Seed+1)
	steady(loadCtx, ctx, &wg, cfg.MessageRate, 16, l.counters.Step, cfg.Seed+2)
	if l.orders != nil {
		steady(loadCtx, ctx, &wg, cfg.OrderRate, 16, l.orders.Step, cfg.Seed+3)
	}
	if l.config != nil {
		steady(loadCtx, ctx, &wg, cfg.ConfigRate, 1, l.config.Step, cfg.Seed+4)
	}
	in := &injector{sys: sys, rng: rng, down: cfg.ServerDown, ready: 10 * time.Minute,
		orphan: func(pid int, name string) { res.Orphans = append(res.Orphans, fmt.Sprintf("%s (pid %d)", name, pid)) }}
	sleep(loadCtx, 10*time.Second) // warm: the load reaches every function first
	res.Faults = injectAll(ctx, loadCtx, cfg, in, l.probe, rng, say, everyKind)
	<-loadCtx.Done()
	wg.Wait()

	say("load stopped; settling (at most %s)", cfg.Settle)
	end := time.Now()
	sctx, cancel := context.WithTimeout(ctx, cfg.Settle)
	settled := poll(sctx, func() bool { return l.settled(sctx, dbs) }) == nil
	cancel()
	res.Settled = time.Since(end)
	say("settled: %v after %s", settled, res.Settled.Round(time.Second))
	if err := l.tally(ctx, dbs, res); err != nil {
		return res, err
	}
	for try := 0; try < 6; try++ { // the orders' reserves complete shortly after their decision
		if res.Verify, res.VerifyOK = verifyAll(ctx, sys); res.VerifyOK {
			break
		}
		sleep(ctx, 10*time.Second)
	}
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

// loads are the load generators of a run.
type loads struct {
	jobs     *Jobs
	counters *Counters
	orders   *Orders     // nil: no orders load
	config   *LiveConfig // nil: no configuration load
	probe    *prober
	refusals *refusals
}

func setupLoads(ctx context.Context, cfg Config, dbs *databases) (*loads, error) {
	url := func(fn string) string { return fmt.Sprintf("http://127.0.0.1:%d", cfg.Ports.Functions[fn]) }
	prefix := fmt.Sprintf("chaos-%d-%d", cfg.Seed, time.Now().UnixNano())
	l := &loads{jobs: NewJobs(url("receiver"), prefix, 2*time.Minute), counters: NewCounters(url("dialogs"), 2*time.Minute),
		refusals: &refusals{}}
	l.jobs.refusals, l.counters.refusals = l.refusals, l.refusals
	if err := l.counters.Setup(ctx, cfg.Users); err != nil {
		return nil, err
	}
	l.probe = &prober{jobs: l.jobs, counters: l.counters, jobsDB: dbs.jobs, dialogsDB: dbs.dialogs,
		countersDB: dbs.counters, deadline: cfg.Recover}
	if l.probe.sender, l.probe.recipient = l.counters.CreateUser(ctx, "probe-from"), l.counters.CreateUser(ctx, "probe-to"); l.probe.recipient == 0 {
		return nil, errors.New("dialogs: probe users not created")
	}
	if cfg.OrderRate > 0 {
		urls := map[string]string{}
		for _, fn := range []string{"users", "orders", "payment", "stock", "delivery"} {
			urls[fn] = url(fn)
		}
		l.orders = NewOrders(urls, prefix, 2*time.Minute)
		l.orders.refusals = l.refusals
		l.probe.orders, l.probe.ordersDB = l.orders, dbs.orders
		if err := l.orders.Setup(ctx, cfg.Users, cfg.Couriers); err != nil {
			return nil, fmt.Errorf("orders setup: %w", err)
		}
	}
	if cfg.ConfigRate > 0 {
		l.config = NewLiveConfig(filepath.Join(cfg.Dir, "engine", "config.git"), filepath.Join(cfg.Dir, "config-work"),
			url("config-source"), url("config-subscribe"))
		if err := l.config.Setup(ctx); err != nil {
			return nil, fmt.Errorf("config setup: %w", err)
		}
	}
	return l, nil
}

func (l *loads) settled(ctx context.Context, dbs *databases) bool {
	return l.jobs.Settled(ctx, dbs.jobs, dbs.ch) && countersSettled(ctx, l.counters, dbs) &&
		(l.orders == nil || l.orders.Settled(ctx, dbs.orders, dbs.payment)) &&
		(l.config == nil || l.config.Tally(ctx).AtHead)
}

func (l *loads) tally(ctx context.Context, dbs *databases, res *Result) error {
	var err error
	if res.Jobs, err = l.jobs.Tally(ctx, dbs.jobs, dbs.ch); err != nil {
		return err
	}
	if res.Counters, err = l.counters.Tally(ctx, dbs.dialogs, dbs.counters); err != nil {
		return err
	}
	if l.orders != nil {
		o, err := l.orders.Tally(ctx, dbs.orders, dbs.payment)
		if err != nil {
			return err
		}
		res.Orders = &o
	}
	if l.config != nil {
		t := l.config.Tally(ctx)
		res.Config = &t
	}
	res.Refused = l.refusals.List()
	return nil
}

// injectAll injects the scheduled faults one after the other, each
// followed by its recovery, until the schedule or the load (loadCtx)
// ends; a fault under way is seen through to its recovery (ctx).
func injectAll(ctx, loadCtx context.Context, cfg Config, in *injector, pr *prober, rng *rand.Rand, say func(string, ...any), everyKind chan struct{}) []Fault {
	var out []Fault
	defer func() {
		if len(out) < len(cfg.Kinds) || len(cfg.Kinds) == 0 { // stopped early, or no fault to inject
			close(everyKind)
		}
	}()
	for _, kind := range schedule(rng, cfg.Kinds, cfg.Faults) {
		if loadCtx.Err() != nil {
			break
		}
		f := Fault{Kind: kind, At: time.Now()}
		f.Target, f.Err = in.inject(ctx, kind)
		if f.Err == nil {
			f.Recover, f.Err = pr.recovered(ctx, f.At)
		}
		if f.Err != nil && ctx.Err() != nil {
			break // the run was stopped
		}
		say("fault %-18s %-22s recovered in %-6s %v", f.Kind, f.Target, f.Recover.Round(100*time.Millisecond), errText(f.Err))
		if out = append(out, f); len(out) == len(cfg.Kinds) {
			close(everyKind) // the schedule starts with every kind once
		}
		sleep(loadCtx, cfg.Gap+time.Duration(rng.Int64N(int64(cfg.Gap)+1)))
	}
	return out
}

// steady runs fn(reqCtx) rate times a second on up to workers
// goroutines until ctx ends; a tick that finds every worker busy is
// skipped (the load stays steady, it does not pile up behind an outage).
func steady(ctx, reqCtx context.Context, wg *sync.WaitGroup, rate float64, workers int, fn func(context.Context, *rand.Rand), seed uint64) {
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
				fn(reqCtx, rng)
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
	jobs, dialogs, counters, orders, payment *pgxpool.Pool
	ch                                       driver.Conn
}

func openDBs(ctx context.Context, sys *System) (*databases, error) {
	d := &databases{}
	var err error
	for db, p := range map[string]**pgxpool.Pool{"jobflow": &d.jobs, "dialogs": &d.dialogs, "counters": &d.counters,
		"orders": &d.orders, "payment": &d.payment} {
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
	d.orders.Close()
	d.payment.Close()
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
