package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// e2eOptions are the settings of the end-to-end part (BENCH_E2E_*).
type e2eOptions struct {
	Short       bool          `envconfig:"SHORT" desc:"e2e: a short version (runs of a few seconds) to check that it works; figures are rough"`
	Systems     []string      `envconfig:"SYSTEMS" default:"jobflow,jobflow-one-event,baseline" desc:"e2e: the systems measured: jobflow (batched, default settings), jobflow-one-event (JOBFLOW_ONE_EVENT_PER_REQUEST=true), baseline (bench/baseline)"`
	Sleeps      []int         `envconfig:"SLEEPS" default:"0,100" desc:"e2e: the jobs' sleep (ms), one series each"`
	DataSize    int           `envconfig:"DATA_SIZE" default:"64" desc:"e2e: the jobs' data_size (bytes)"`
	Clients     int           `envconfig:"CLIENTS" default:"64" desc:"e2e: closed-loop clients of the capacity run"`
	CapacityFor time.Duration `envconfig:"CAPACITY_FOR" default:"15s" desc:"e2e: how long the closed loop of the capacity run posts (short: 5s)"`
	Loads       []float64     `envconfig:"LOADS" default:"0.25,0.5,0.75" desc:"e2e: the open-loop runs offer these fractions of the measured capacity"`
	LoadFor     time.Duration `envconfig:"LOAD_FOR" default:"10s" desc:"e2e: how long each open-loop run posts (short: 3s)"`
	InfoClients int           `envconfig:"INFO_CLIENTS" default:"32" desc:"e2e: closed-loop clients of GET /info/<id>"`
	InfoFor     time.Duration `envconfig:"INFO_FOR" default:"10s" desc:"e2e: how long GET /info/<id> is loaded (short: 3s)"`
	PGPidFile   string        `envconfig:"PG_PIDFILE" desc:"e2e: PostgreSQL's postmaster.pid, for its CPU (default: BENCH_DIR/postgres/data/postmaster.pid)"`
	CHPidFile   string        `envconfig:"CH_PIDFILE" desc:"e2e: ClickHouse's pid file, for its CPU (default: BENCH_DIR/clickhouse/clickhouse.pid)"`
}

// e2eResult is one row of the end-to-end table: a system and a job sleep.
type e2eResult struct {
	system               string
	sleep                int
	capacity, acceptRate float64
	jobs                 int
	atLoad               []string
	p99                  []time.Duration // at each load
	cpu                  string
	notes                []string
}

type infoResult struct {
	clients           int
	n                 int
	rate              float64
	p50, p99          time.Duration
	failed, knownJobs int
}

var systemWhat = map[string]string{
	"jobflow":           "jobflow, batched (default settings)",
	"jobflow-one-event": "jobflow, `JOBFLOW_ONE_EVENT_PER_REQUEST=true`",
	"baseline":          "plain Kafka baseline (bench/baseline)",
}

// endToEnd measures each system from POST /create/job to queryable: a
// fresh broker and fresh databases each, then for each job sleep a
// warm-up, a closed loop for the capacity and open loops at fractions of
// it; for jobflow batched, GET /info/<id> last.
func (b *bench) endToEnd() error {
	o := &b.o.E2E
	if o.Short {
		o.CapacityFor, o.LoadFor, o.InfoFor = min(o.CapacityFor, 5*time.Second), min(o.LoadFor, 3*time.Second), min(o.InfoFor, 3*time.Second)
	}
	if o.PGPidFile == "" {
		o.PGPidFile = filepath.Join(b.o.Dir, "postgres", "data", "postmaster.pid")
	}
	if o.CHPidFile == "" {
		o.CHPidFile = filepath.Join(b.o.Dir, "clickhouse", "clickhouse.pid")
	}
	b.say("e2e: building jobflow, the pipeline's functions and the baseline")
	if err := b.buildE2E(); err != nil {
		return err
	}
	for _, name := range o.Systems {
		if systemWhat[name] == "" {
			return fmt.Errorf("e2e: unknown system %q", name)
		}
		if err := b.e2eSystem(name); err != nil {
			b.e2e = append(b.e2e, e2eResult{system: name, notes: []string{"FAILED: " + err.Error()}})
			b.say("e2e %s: %v", name, err)
		}
	}
	return nil
}

func (b *bench) e2eSystem(name string) error {
	ctx := b.ctx
	br, err := newBroker()
	if err != nil {
		return err
	}
	defer br.Close()
	pgURL, err := freshPostgres(ctx, b.o.PostgresURL, "bench_e2e")
	if err != nil {
		return err
	}
	if err := freshClickHouse(ctx, b.o.ClickHouseAddr, "bench_e2e"); err != nil {
		return err
	}
	b.say("e2e %s: starting", name)
	var s *system
	if name == "baseline" {
		s, err = b.startBaseline(br, pgURL, "bench_e2e")
	} else {
		s, err = b.startJobflow(br, pgURL, "bench_e2e", name == "jobflow-one-event")
	}
	if err != nil {
		return err
	}
	defer s.stop()
	tr, err := newTracker(ctx, pgURL, b.o.ClickHouseAddr, "bench_e2e")
	if err != nil {
		return err
	}
	defer tr.Close()
	tctx, stopTracker := context.WithCancel(ctx)
	defer stopTracker()
	go tr.run(tctx)
	total := 0
	for _, sleep := range b.o.E2E.Sleeps {
		r := e2eResult{system: name, sleep: sleep}
		err := b.e2eSeries(s, tr, &r, &total)
		if err != nil {
			r.notes = append(r.notes, "FAILED: "+err.Error())
		}
		b.e2e = append(b.e2e, r)
		b.say("e2e %s sleep %d ms: capacity %.0f jobs/s (accepted %.0f/s), at loads %v; CPU µs/job %s %v", name, sleep, r.capacity, r.acceptRate, r.atLoad, r.cpu, r.notes)
		if err != nil {
			return err
		}
	}
	if s.infoURL != "" && name == "jobflow" {
		ids := tr.someIDs()
		if len(ids) == 0 {
			return fmt.Errorf("GET /info: no job known done")
		}
		b.say("e2e %s: GET /info/<id> with %d clients for %s", name, b.o.E2E.InfoClients, b.o.E2E.InfoFor)
		n, rate, p50, p99, failed := infoLoad(ctx, s.infoURL, ids, b.o.E2E.InfoClients, b.o.E2E.InfoFor)
		b.info = append(b.info, infoResult{clients: b.o.E2E.InfoClients, n: n, rate: rate, p50: p50, p99: p99, failed: failed, knownJobs: len(ids)})
		b.say("e2e GET /info: %d answers, %.0f/s, p50 %s, p99 %s, %d failed", n, rate, ms(p50), ms(p99), failed)
	}
	return nil
}

// e2eSeries measures one system with jobs of one sleep; total counts the
// jobs the system accepted so far (the databases keep them all).
func (b *bench) e2eSeries(s *system, tr *tracker, r *e2eResult, total *int) error {
	ctx, o := b.ctx, &b.o.E2E
	gen := newLoadGen(s.createURL, []byte(fmt.Sprintf(`{"sleep":%d,"data_size":%d}`, r.sleep, o.DataSize)))
	var accepted atomic.Int64
	onJob := func(id uuid.UUID, at time.Time) { accepted.Add(1); tr.accepted(id, at) }
	settle := func(what string, max time.Duration) (time.Time, error) {
		*total += int(accepted.Swap(0))
		at, err := tr.waitAllDone(ctx, *total, max)
		if err != nil {
			return at, fmt.Errorf("%s: %w", what, err)
		}
		return at, nil
	}
	// Warm-up, not measured: instances started, connections and consumer
	// groups settled.
	tr.sample(200)
	gen.openLoop(ctx, 200, map[bool]time.Duration{true: time.Second, false: 3 * time.Second}[o.Short], onJob)
	if _, err := settle("warm-up", 2*time.Minute); err != nil {
		return err
	}
	_, _, _ = tr.waitProbes(ctx, 10*time.Second)
	if f := gen.failures(); f != "" {
		return fmt.Errorf("warm-up: %s", f)
	}

	// Capacity: a closed loop; the rate is the jobs it got accepted over
	// the time from its start until the last of them was queryable.
	tr.sample(5000)
	cpu := startCPU(s.procs)
	start := time.Now()
	gen.closedLoop(ctx, o.Clients, o.CapacityFor, onJob)
	posted := time.Since(start)
	jobs := int(accepted.Load())
	doneAt, err := settle("capacity run", 3*time.Minute)
	r.cpu = perJob(cpu.end(), jobs)
	if err != nil {
		return err
	}
	lat, lost, _ := tr.waitProbes(ctx, 10*time.Second)
	r.jobs, r.acceptRate = jobs, float64(jobs)/posted.Seconds()
	r.capacity = float64(jobs) / doneAt.Sub(start).Seconds()
	r.notes = append(r.notes, fmt.Sprintf("capacity run: %d clients, %d jobs accepted in %s, all queryable after %s (submit → queryable p50 %s, p99 %s, backlog included)",
		o.Clients, jobs, posted.Round(time.Millisecond), doneAt.Sub(start).Round(time.Millisecond), ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99))))
	if f := gen.failures(); f != "" {
		r.notes = append(r.notes, "capacity run: "+f)
	}
	if lost > 0 {
		r.notes = append(r.notes, fmt.Sprintf("capacity run: %d probes not seen done", lost))
	}

	for _, load := range o.Loads {
		rate := load * r.capacity
		tr.sample(rate)
		gen.failed.Store(0)
		t0 := time.Now()
		offered := gen.openLoop(ctx, rate, o.LoadFor, onJob)
		took := time.Since(t0)
		if _, err := settle(fmt.Sprintf("%.0f%% load", 100*load), 2*time.Minute); err != nil {
			return err
		}
		lat, lost, where := tr.waitProbes(ctx, 10*time.Second)
		r.atLoad = append(r.atLoad, fmt.Sprintf("%s / %s", ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99))))
		r.p99 = append(r.p99, quantile(lat, 0.99))
		note := fmt.Sprintf("%.0f%%: %.0f jobs/s offered (%d in %s), %d probes; %s", 100*load, rate, offered, took.Round(time.Millisecond), len(lat), where)
		if lost > 0 {
			note += fmt.Sprintf(", %d probes not seen done", lost)
		}
		if f := gen.failures(); f != "" {
			note += ", " + f
		}
		r.notes = append(r.notes, note)
	}
	return nil
}

// e2eTable is the end-to-end report ("" if the part did not run).
func (b *bench) e2eTable() string {
	if len(b.e2e) == 0 && len(b.info) == 0 {
		return ""
	}
	var s strings.Builder
	o := b.o.E2E
	short := ""
	if o.Short {
		short = " (BENCH_E2E_SHORT: rough figures)"
	}
	fmt.Fprintf(&s, "\nEnd to end%s: POST /create/job until the job is finish in PostgreSQL and both its rows are in ClickHouse; "+
		"capacity from a closed loop of %d clients for %s; latencies at fractions of it from open loops of %s (p50 / p99, probes polled every %s); "+
		"CPU µs per job by process in the capacity run (system = all but the bench and the databases).\n\n",
		short, o.Clients, o.CapacityFor, o.LoadFor, probeEvery)
	s.WriteString("| system | sleep | capacity (jobs/s) | accepted/s |")
	for _, l := range o.Loads {
		fmt.Fprintf(&s, " at %.0f %% |", 100*l)
	}
	s.WriteString(" CPU µs per job |\n|---|---:|---:|---:|")
	for range o.Loads {
		s.WriteString("---:|")
	}
	s.WriteString("---|\n")
	for _, r := range b.e2e {
		fmt.Fprintf(&s, "| %s | %d ms | %.0f | %.0f |", systemWhat[r.system], r.sleep, r.capacity, r.acceptRate)
		for i := range o.Loads {
			v := "–"
			if i < len(r.atLoad) {
				v = r.atLoad[i]
			}
			fmt.Fprintf(&s, " %s |", v)
		}
		fmt.Fprintf(&s, " %s |\n", dash(r.cpu))
	}
	ratio := func(a string, sleep int) {
		var x, y float64
		for _, r := range b.e2e {
			if r.sleep == sleep && r.system == a {
				x = r.capacity
			}
			if r.sleep == sleep && r.system == "baseline" {
				y = r.capacity
			}
		}
		if x > 0 && y > 0 {
			fmt.Fprintf(&s, "- %s / baseline, sleep %d ms: %.0f%%\n", a, sleep, 100*x/y)
		}
	}
	s.WriteString("\n")
	for _, sleep := range o.Sleeps {
		ratio("jobflow", sleep)
		ratio("jobflow-one-event", sleep)
	}
	s.WriteString(b.e2eGoals())
	for _, i := range b.info {
		fmt.Fprintf(&s, "\nGET /info/<id> (jobflow's query function), closed loop of %d clients for %s over %d known jobs: %d answers, **%.0f requests/s, p50 %s, p99 %s**, %d failed\n",
			i.clients, o.InfoFor, i.knownJobs, i.n, i.rate, ms(i.p50), ms(i.p99), i.failed)
	}
	s.WriteString("\nNotes:\n")
	for _, r := range b.e2e {
		for _, n := range r.notes {
			fmt.Fprintf(&s, "- %s, sleep %d ms: %s\n", r.system, r.sleep, n)
		}
	}
	return s.String()
}

// e2eGoals checks the figures against issue #16's goals (sleep 0).
func (b *bench) e2eGoals() string {
	get := func(system string) *e2eResult {
		for i := range b.e2e {
			if r := &b.e2e[i]; r.system == system && r.sleep == 0 && r.capacity > 0 {
				return r
			}
		}
		return nil
	}
	var s strings.Builder
	mark := func(ok bool) string { return map[bool]string{true: "met", false: "**not met**"}[ok] }
	s.WriteString("\nGoals of issue #16 (sleep 0):\n")
	jf, one, base := get("jobflow"), get("jobflow-one-event"), get("baseline")
	if jf != nil {
		fmt.Fprintf(&s, "- jobflow ≥ 5,000 jobs/s end to end: %.0f, %s\n", jf.capacity, mark(jf.capacity >= 5000))
		if base != nil {
			fmt.Fprintf(&s, "- jobflow ≥ 80 %% of the baseline's capacity: %.0f %%, %s\n", 100*jf.capacity/base.capacity, mark(jf.capacity >= 0.8*base.capacity))
		}
		if i := slices.Index(b.o.E2E.Loads, 0.5); i >= 0 && i < len(jf.p99) {
			fmt.Fprintf(&s, "- jobflow p99 submit → queryable ≤ 100 ms at half capacity: %s, %s\n", ms(jf.p99[i]), mark(jf.p99[i] <= 100*time.Millisecond))
		}
	}
	if one != nil {
		fmt.Fprintf(&s, "- one event per request ≥ 1,500 jobs/s: %.0f, %s\n", one.capacity, mark(one.capacity >= 1500))
	}
	for _, i := range b.info {
		fmt.Fprintf(&s, "- GET /info ≥ 10,000 requests/s with p99 ≤ 20 ms: %.0f/s, p99 %s, %s\n", i.rate, ms(i.p99), mark(i.rate >= 10000 && i.p99 <= 20*time.Millisecond))
	}
	return s.String()
}
