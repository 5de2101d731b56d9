package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/pingsource"
	"github.com/jobflow/jobflow/internal/procs"
	"github.com/jobflow/jobflow/internal/scaler"
	"github.com/jobflow/jobflow/internal/tracestore"
)

// ClusterSinkHost is the host of Knative's KafkaSink ingress on a cluster;
// URLs to it (in func.yaml envs) are rewritten to the engine's ingress.
const ClusterSinkHost = plan.ClusterSinkHost

// Engine runs the plan of a repository's manifests on one machine.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	out   io.Writer
	ready chan struct{}

	mu       sync.Mutex
	plan     *plan.Plan
	pools    map[string]*scaler.Pool   // one per function: activator + 0..N instances
	adapters map[string]*procs.Process // long-running processes, never scaled
	sources  []*kafkasource.Source
	triggers []*kafkasource.Source // a Broker Trigger's dispatcher each
	pings    *pingsource.Runner    // nil: no PingSource
	send     *kafkasource.Sender   // shared by sources, triggers and pings
	traces   *tracestore.Store     // nil: traces not kept
}

// New returns an engine; out receives the human-readable progress and status.
func New(cfg Config, log *slog.Logger, out io.Writer) *Engine {
	return &Engine{cfg: cfg, log: log, out: out, ready: make(chan struct{}),
		pools: map[string]*scaler.Pool{}, adapters: map[string]*procs.Process{}}
}

// Ready is closed once everything runs and sources have their partitions.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Plan is the plan being run (nil before Run built it).
func (e *Engine) Plan() *plan.Plan {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.plan
}

func (e *Engine) say(format string, args ...any) { fmt.Fprintf(e.out, format+"\n", args...) }

func (e *Engine) state(parts ...string) string {
	return filepath.Join(append([]string{e.cfg.StateDir}, parts...)...)
}

// Run builds the plan of the manifests and starts it, blocks until ctx
// ends, then stops everything it started in reverse order: the adapters,
// the PingSources, the sources and triggers (committing finished
// offsets), the functions, the ingresses, the broker and the servers.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.prepareDirs(); err != nil {
		return err
	}
	var stops stack
	defer stops.unwind()
	topo, err := e.topology()
	if err != nil {
		return err
	}
	// Claim the listeners now, before servers start and functions build,
	// so nothing else takes their ports meanwhile.
	lns, err := reserve(topo, e.cfg)
	if err != nil {
		return err
	}
	stops.push(lns.release)
	e.say("manifests: %d functions, %d KafkaSources, %d KafkaSinks, %d SinkBindings, %d topics, %d Brokers, %d Triggers, %d PingSources",
		len(topo.Functions), len(topo.Sources), len(topo.Sinks), len(topo.Bindings), len(topo.Topics),
		len(topo.Brokers), len(topo.Triggers), len(topo.PingSources))

	if err := e.startTracing(ctx, &stops); err != nil {
		return err
	}
	p, brokers, err := e.startBackends(ctx, &stops, topo, lns)
	if err != nil {
		return err
	}
	if err := e.build(ctx, p); err != nil {
		return err
	}
	if err := e.startDataPlane(ctx, &stops, p, lns, brokers); err != nil {
		return err
	}
	if err := e.startAdmin(&stops, brokers); err != nil {
		return err
	}
	e.startObserve(&stops, p, brokers)
	e.printReady(p)
	close(e.ready)
	e.statusLoop(ctx)
	e.say("stopping...")
	last, began := e.Status(), time.Now()
	stops.unwind()
	for _, l := range wrap(fmt.Sprintf("stopped in %.1fs:", time.Since(began).Seconds()), e.stopped(p, last), termWidth(e.out)) {
		e.say("%s", l)
	}
	return nil
}

// prepareDirs makes the paths absolute (processes run in other
// directories) and creates the log directory.
func (e *Engine) prepareDirs() (err error) {
	if e.cfg.StateDir, err = filepath.Abs(e.cfg.StateDir); err != nil {
		return err
	}
	if e.cfg.Root, err = filepath.Abs(e.cfg.Root); err != nil {
		return err
	}
	return os.MkdirAll(e.state("logs"), 0o755)
}

// topology reads the manifests and keeps what the config selects.
func (e *Engine) topology() (*manifest.Topology, error) {
	topo, err := manifest.Load(e.cfg.Root)
	if err != nil {
		return nil, err
	}
	if err := plan.Select(topo, e.cfg.Functions); err != nil {
		return nil, fmt.Errorf("JOBFLOW_FUNCTIONS: %w", err)
	}
	if !e.cfg.Adapters {
		topo.Adapters = nil
	}
	return topo, nil
}

// startBackends starts the servers and the broker, builds the plan on
// their addresses, and creates its topics and databases.
func (e *Engine) startBackends(ctx context.Context, stops *stack, topo *manifest.Topology, lns *listeners) (*plan.Plan, []string, error) {
	srv, err := e.startServers(ctx, stops)
	if err != nil {
		return nil, nil, err
	}
	brokers, err := e.startKafka(stops)
	if err != nil {
		return nil, nil, err
	}
	p, err := plan.Build(topo, e.settings(), lns.addresses(srv, brokers))
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	e.plan = p
	e.mu.Unlock()
	if err := kafkabroker.EnsureTopics(brokers, p.Topics); err != nil {
		return nil, nil, err
	}
	if err := createDatabases(ctx, srv.postgres, p.Databases); err != nil {
		return nil, nil, err
	}
	return p, brokers, nil
}

// startDataPlane starts the layers that carry events, each stopped with
// its own context: the ingresses, the functions, the sources and
// triggers, the PingSources, the adapters.
func (e *Engine) startDataPlane(ctx context.Context, stops *stack, p *plan.Plan, lns *listeners, brokers []string) error {
	ingress := stops.layer()
	if err := e.startIngress(ingress, lns.takeIngress(), brokers, p.Sinks); err != nil {
		return err
	}
	if err := e.startBrokerIngress(ingress, lns.takeBroker(), brokers, p); err != nil {
		return err
	}
	if err := e.startFunctions(ctx, stops.layer(), p.Functions, lns); err != nil {
		return err
	}
	sources := stops.layer()
	if err := e.startSources(sources, p.Sources, brokers); err != nil {
		return err
	}
	if err := e.startTriggers(sources, p.Triggers, brokers); err != nil {
		return err
	}
	if err := e.startPings(stops.layer(), p.Pings); err != nil {
		return err
	}
	return e.startAdapters(ctx, stops.layer(), p.Adapters)
}

func (e *Engine) settings() plan.Settings {
	return plan.Settings{
		Root: e.cfg.Root, Namespace: e.cfg.Namespace, StateDir: e.cfg.StateDir,
		Databases: e.cfg.Databases, OneEventPerRequest: e.cfg.OneEventPerRequest,
		Scale: autoscalerOverrides(e.cfg),
	}
}
