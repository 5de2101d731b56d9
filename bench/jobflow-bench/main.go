// Command jobflow-bench measures the sinks against the databases' limits,
// in one go on one machine (scripts/bench.sh, `make bench`):
//
//   - raw CopyFrom into PostgreSQL and raw PrepareBatch into ClickHouse: the limits;
//   - the naive sink: pgsink/chsink with one row per transaction
//     (BATCH_MAX_ITEMS=1), serial and with 4 at once;
//   - our sinks fed through the local engine from Kafka: CloudEvents in
//     binary mode, as the KafkaSink ingress writes them, loaded into
//     postgres-topic / clickhouse-topic first, then drained by the engine's
//     KafkaSources (triggers/) into the sink functions (functions/);
//   - ClickHouse's own Kafka table engine draining the same CSV topic;
//   - the delivery latency the sinks add at half their measured rate, with
//     the Kafka engine reading the same topic side by side;
//   - end to end (e2e.go): HTTP POST /create/job until the job is finish in
//     PostgreSQL and both its rows are in ClickHouse, for jobflow batched,
//     jobflow one event per request and the plain-Kafka baseline
//     (bench/baseline), and GET /info/<id> under load.
//
// It prints a Markdown table; docs/BENCHMARKS.md explains it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
)

type options struct {
	PostgresURL    string             `envconfig:"BENCH_POSTGRES_URL" required:"true" desc:"PostgreSQL server to use (databases bench_* are created on it)"`
	ClickHouseAddr string             `envconfig:"BENCH_CLICKHOUSE_ADDR" required:"true" desc:"ClickHouse native host:port (databases bench_* are created on it)"`
	Root           string             `envconfig:"BENCH_ROOT" default:"." desc:"repository root"`
	Dir            string             `envconfig:"BENCH_DIR" default:".jobflow/bench" desc:"where the bench keeps the engine's binaries and logs"`
	PGRows         int                `envconfig:"BENCH_PG_ROWS" default:"200000" desc:"rows for the PostgreSQL runs (kfake keeps them in RAM: ~1.3 KB each)"`
	CHRows         int                `envconfig:"BENCH_CH_ROWS" default:"300000" desc:"rows for the ClickHouse runs"`
	NaiveRows      int                `envconfig:"BENCH_NAIVE_ROWS" default:"20000" desc:"rows loaded for the naive runs"`
	NaiveFor       time.Duration      `envconfig:"BENCH_NAIVE_FOR" default:"15s" desc:"how long a naive run is measured"`
	LatencyFor     time.Duration      `envconfig:"BENCH_LATENCY_FOR" default:"10s" desc:"how long the latency runs produce (a sixth of it per step of the fed-capacity ramp; records are made beforehand and held in RAM)"`
	Loads          []float64          `envconfig:"BENCH_LOADS" default:"0.5,0.25" desc:"the latency runs feed each sink at these fractions of its fed capacity (the last is run again for chsink beside ClickHouse's Kafka engine)"`
	Rates          map[string]float64 `envconfig:"BENCH_RATES" desc:"for latency runs without the sinks part: the drain rates to feed at, e.g. pgsink:90000,chsink:200000"`
	Fed            map[string]float64 `envconfig:"BENCH_FED" desc:"for latency runs: take these fed capacities instead of measuring them (no ramp), so that two runs feed the same rates, e.g. chsink:112000"`
	Sinks          []string           `envconfig:"BENCH_SINKS" default:"pgsink,chsink" desc:"the sinks the drain and latency parts run"`
	Only           []string           `envconfig:"BENCH_ONLY" desc:"run only these parts (raw,naive,sinks,kafka-engine,latency,e2e); empty: all"`
	E2E            e2eOptions         `envconfig:"BENCH_E2E"`
	Out            string             `envconfig:"BENCH_OUT" desc:"also write the table to this file"`
	Debug          bool               `envconfig:"BENCH_DEBUG" desc:"print the engine's state in drain runs, a 250 ms latency timeline, stalls of the bench and broker processes and the broker's GC trace"`
	CPUProfile     string             `envconfig:"BENCH_CPUPROFILE" desc:"write a CPU profile of the bench process (engine, dispatcher, producer; the broker runs in a child process) to this file"`
}

func (o *options) engineDir() string { return filepath.Join(o.Dir, "engine") }

func (o *options) wants(part string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, p := range o.Only {
		if p == part {
			return true
		}
	}
	return false
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "env") {
		var o options
		_ = envconfig.Usage("", &o)
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "broker" {
		debugging = os.Getenv("BENCH_DEBUG") != "" // set by the bench for its child
		if err := runBroker(); err != nil {
			fmt.Fprintln(os.Stderr, "jobflow-bench broker:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	if err := envconfig.Process("", &o); err != nil {
		fmt.Fprintln(os.Stderr, "jobflow-bench:", err)
		os.Exit(2)
	}
	debugging = o.Debug
	var err error
	if o.Root, err = filepath.Abs(o.Root); err == nil {
		o.Dir, err = filepath.Abs(o.Dir)
	}
	if err == nil {
		err = os.MkdirAll(o.engineDir(), 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobflow-bench:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	b := &bench{o: &o, ctx: ctx, rates: map[string]float64{}}
	runErr := b.run()
	if err := dropTrash(o.ClickHouseAddr); err != nil {
		fmt.Fprintln(os.Stderr, "jobflow-bench: dropping the earlier runs' tables:", err)
	}
	table := b.table()
	fmt.Println()
	fmt.Print(table)
	if o.Out != "" {
		_ = os.WriteFile(o.Out, []byte(table), 0o644)
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "jobflow-bench:", runErr)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// result is one line of the table.
type result struct {
	name, what string
	rows       int
	took       time.Duration
	rate       float64
	p50, p99   string
	note       string
}

type bench struct {
	o       *options
	ctx     context.Context
	results []result
	rates   map[string]float64
	e2e     []e2eResult
	info    []infoResult
}

func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bench) add(r result) {
	if r.rate == 0 && r.took > 0 {
		r.rate = float64(r.rows) / r.took.Seconds()
	}
	b.results = append(b.results, r)
	b.rates[r.name] = r.rate
	b.say("%-28s %9d rows in %8s = %10.0f rows/s %s %s %s", r.name, r.rows, r.took.Round(time.Millisecond), r.rate, r.p50, r.p99, r.note)
}

func (b *bench) table() string {
	var s strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&s, "jobflow-bench on %s, %s, load before: %s\n\n", host, time.Now().Format("2006-01-02 15:04"), loadavg())
	if len(b.results) == 0 {
		s.WriteString(b.e2eTable())
		return s.String()
	}
	fmt.Fprintf(&s, "| run | what | rows | time | rows/s | p50 | p99 | note |\n|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range b.results {
		fmt.Fprintf(&s, "| %s | %s | %d | %s | %.0f | %s | %s | %s |\n", r.name, r.what, r.rows,
			r.took.Round(time.Millisecond), r.rate, dash(r.p50), dash(r.p99), r.note)
	}
	ratio := func(a, c string) {
		if b.rates[a] > 0 && b.rates[c] > 0 {
			fmt.Fprintf(&s, "- %s / %s = %.1f%%  (%.1f×)\n", a, c, 100*b.rates[a]/b.rates[c], b.rates[a]/b.rates[c])
		}
	}
	s.WriteString("\nRatios:\n")
	ratio("pgsink", "raw CopyFrom")
	ratio("pgsink", "naive pgsink")
	ratio("pgsink", "naive pgsink ×4")
	ratio("chsink", "raw PrepareBatch")
	ratio("chsink", "naive chsink")
	ratio("chsink", "naive chsink ×4")
	ratio("chsink", "ClickHouse Kafka engine")
	s.WriteString(b.e2eTable())
	return s.String()
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
