package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/procs"
	"github.com/jobflow/jobflow/internal/scaler"
	"github.com/jobflow/jobflow/internal/services"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// ClusterSinkHost is the host of Knative's KafkaSink ingress on a cluster;
// URLs to it (in func.yaml envs) are rewritten to the engine's ingress.
const ClusterSinkHost = "kafka-sink-ingress.knative-eventing.svc.cluster.local"

// Engine is a running local engine.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	out      io.Writer
	topo     *manifest.Topology
	brokers  []string
	pgURL    string
	dlURL    string
	ctURL    string
	chAddr   string
	ingress  string
	pools    map[string]*scaler.Pool   // one per function: activator + 0..N instances
	adapters map[string]*procs.Process // long-running sources (CDC), never scaled
	routes   map[string]net.Listener   // fixed ports claimed at startup, until their pool takes them
	sources  []*kafkasource.Source
	stopSvcs []func()
	mu       sync.Mutex
	ready    chan struct{}
}

// New returns an engine; out receives the human-readable progress and status.
func New(cfg Config, log *slog.Logger, out io.Writer) *Engine {
	return &Engine{cfg: cfg, log: log, out: out, pools: map[string]*scaler.Pool{}, adapters: map[string]*procs.Process{}, ready: make(chan struct{})}
}

// Ready is closed once everything runs and sources have their partitions.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Runner is a function's pool (scaler.Pool) or an adapter's process
// (procs.Process), as tests see it.
type Runner interface {
	URL() string     // where it is served (a function: its activator)
	Ready() bool     // a function: its activator serves, with or without instances
	Restarts() int64 // restarts after crashes
	Kill() error     // kills a running process (a function: one instance)
}

// Function returns a function's pool, or the CDC adapter ("jobflow-cdc"),
// or nil (tests kill them).
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

// Sources returns the running sources.
func (e *Engine) Sources() []*kafkasource.Source {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*kafkasource.Source(nil), e.sources...)
}

func (e *Engine) say(format string, args ...any) { fmt.Fprintf(e.out, format+"\n", args...) }

func (e *Engine) state(parts ...string) string {
	return filepath.Join(append([]string{e.cfg.StateDir}, parts...)...)
}

// Run starts everything, blocks until ctx ends, then stops everything it
// started in reverse order: sources (committing finished offsets), then
// functions, the ingress, the broker and the servers.
func (e *Engine) Run(ctx context.Context) (err error) {
	abs, err := filepath.Abs(e.cfg.StateDir)
	if err != nil {
		return err
	}
	e.cfg.StateDir = abs
	if e.cfg.Root, err = filepath.Abs(e.cfg.Root); err != nil {
		return err
	}
	if err := os.MkdirAll(e.state("logs"), 0o755); err != nil {
		return err
	}
	defer func() {
		for i := len(e.stopSvcs) - 1; i >= 0; i-- {
			e.stopSvcs[i]()
		}
	}()

	e.topo, err = manifest.Load(e.cfg.Root)
	if err != nil {
		return err
	}
	if err := e.selectFunctions(); err != nil {
		return err
	}
	// Claim the functions' fixed route ports now, before servers start and
	// functions build, so nothing else takes them meanwhile.
	if err := e.reserveRoutes(); err != nil {
		return err
	}
	defer e.releaseRoutes()
	e.say("manifests: %d functions, %d KafkaSources, %d KafkaSinks, %d SinkBindings, %d topics",
		len(e.topo.Functions), len(e.topo.Sources), len(e.topo.Sinks), len(e.topo.Bindings), len(e.topo.Topics))

	if err := e.startServers(ctx); err != nil {
		return err
	}
	if err := e.startKafka(); err != nil {
		return err
	}
	if err := e.buildFunctions(ctx); err != nil {
		return err
	}

	// Layers stop in reverse: each has its own context.
	ingressCtx, stopIngress := context.WithCancel(context.Background())
	funcsCtx, stopFuncs := context.WithCancel(context.Background())
	sourcesCtx, stopSources := context.WithCancel(context.Background())
	var ingressWG, funcsWG, sourcesWG sync.WaitGroup
	defer func() {
		stopSources()
		sourcesWG.Wait()
		stopFuncs()
		funcsWG.Wait()
		stopIngress()
		ingressWG.Wait()
	}()

	if err := e.startIngress(ingressCtx, &ingressWG); err != nil {
		return err
	}
	if err := e.startFunctions(ctx, funcsCtx, &funcsWG); err != nil {
		return err
	}
	if err := e.startSources(sourcesCtx, &sourcesWG); err != nil {
		return err
	}
	// The CDC source starts after the functions: the dialogs function
	// creates the tables it streams.
	if err := e.startAdapters(funcsCtx, &funcsWG); err != nil {
		return err
	}
	admin, err := e.startAdmin()
	if err != nil {
		return err
	}
	defer admin.Close()

	e.printReady()
	close(e.ready)
	e.statusLoop(ctx)
	e.say("stopping...")
	return nil
}

func (e *Engine) startServers(ctx context.Context) error {
	e.pgURL, e.chAddr = e.cfg.PostgresURL, e.cfg.ClickHouseAddr
	if e.pgURL == "" {
		s := services.Postgres(e.cfg.Root, e.state("postgres"), e.cfg.PostgresPort)
		e.say("postgres: starting under %s (port %d)...", s.Dir, e.cfg.PostgresPort)
		url, err := s.Start(ctx)
		if err != nil {
			return err
		}
		e.pgURL = url
		e.stopSvcs = append(e.stopSvcs, func() { _ = s.Stop(context.Background()) })
	}
	if e.chAddr == "" {
		s := services.ClickHouse(e.cfg.Root, e.state("clickhouse"), e.cfg.ClickHouseTCP, e.cfg.ClickHouseHTTP)
		e.say("clickhouse: starting under %s (port %d)...", s.Dir, e.cfg.ClickHouseTCP)
		addr, err := s.Start(ctx)
		if err != nil {
			return err
		}
		e.chAddr = addr
		e.stopSvcs = append(e.stopSvcs, func() { _ = s.Stop(context.Background()) })
	}
	e.dlURL, e.ctURL = e.cfg.DialogsURL, e.cfg.CountersURL
	if e.dlURL == "" {
		e.dlURL = pgdb.WithDatabase(e.pgURL, "dialogs")
	}
	if e.ctURL == "" {
		e.ctURL = pgdb.WithDatabase(e.pgURL, "counters")
	}
	e.say("postgres: %s", redact(e.pgURL))
	e.say("clickhouse: %s", e.chAddr)
	return nil
}

func (e *Engine) startKafka() error {
	e.brokers = e.cfg.KafkaBrokers
	if len(e.brokers) == 0 {
		dir := ""
		if e.cfg.KafkaPersist {
			dir = e.state("kafka")
		}
		b, err := kafkabroker.Start(e.cfg.KafkaPort, dir)
		if err != nil {
			return err
		}
		e.brokers = b.Addrs()
		e.stopSvcs = append(e.stopSvcs, b.Close)
		e.say("kafka: embedded broker on %s", strings.Join(e.brokers, ","))
	} else {
		e.say("kafka: %s", strings.Join(e.brokers, ","))
	}
	var specs []kafkabroker.TopicSpec
	for _, t := range e.topo.Topics {
		specs = append(specs, kafkabroker.TopicSpec{Name: t.TopicName(), Partitions: t.Spec.Partitions, Config: t.Spec.Config})
	}
	return kafkabroker.EnsureTopics(e.brokers, specs)
}

// buildFunctions builds each function's local main into JOBFLOW_DIR/bin.
func (e *Engine) buildFunctions(ctx context.Context) error {
	if e.cfg.SkipBuild {
		return nil
	}
	start := time.Now()
	for _, f := range e.topo.Functions {
		e.say("build: %s", f.Name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.state("bin", f.Name), "./cmd/"+f.Name)
		cmd.Dir = f.Dir
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", f.Name, err, out)
		}
	}
	if e.cfg.CDC {
		e.say("build: jobflow-cdc")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.state("bin", "jobflow-cdc"), "./cmd/jobflow-cdc")
		cmd.Dir = e.cfg.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build jobflow-cdc: %w\n%s", err, out)
		}
	}
	e.say("build: done in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// startAdapters runs the long-running sources (Knative ContainerSources):
// the CDC source. It is supervised like a function but never scaled.
func (e *Engine) startAdapters(runCtx context.Context, wg *sync.WaitGroup) error {
	if !e.cfg.CDC {
		return nil
	}
	// The CDC source streams tables the dialogs function creates: wake it
	// (it scales back to zero when idle) before the source starts.
	if p := e.Pool("dialogs"); p != nil {
		wctx, cancel := context.WithTimeout(runCtx, e.cfg.StartTimeout)
		err := p.Wake(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("dialogs (the CDC source needs its tables): %w: see %s", err, e.state("logs", "dialogs.log"))
		}
	}
	port, err := procs.FreePort()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(e.state("logs", "jobflow-cdc.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	env := append(e.baseEnv(), "CDC_KAFKA_BOOTSTRAP_SERVERS="+strings.Join(e.brokers, ","), fmt.Sprintf("CDC_HTTP_ADDR=127.0.0.1:%d", port))
	p := procs.New(procs.Spec{Name: "jobflow-cdc", Bin: e.state("bin", "jobflow-cdc"), Env: env, Port: port, Log: logf}, e.log)
	e.mu.Lock()
	e.adapters["jobflow-cdc"] = p
	e.mu.Unlock()
	wg.Add(1)
	go func() { defer wg.Done(); defer logf.Close(); _ = p.Run(runCtx) }()
	return nil
}

func (e *Engine) startIngress(ctx context.Context, wg *sync.WaitGroup) error {
	var sinks []kafkasink.Sink
	for _, s := range e.topo.Sinks {
		sinks = append(sinks, kafkasink.Sink{Namespace: e.ns(s.Namespace), Name: s.Name, Topic: s.Spec.Topic, Structured: s.Structured()})
	}
	in, err := kafkasink.New(e.brokers, sinks, e.log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", e.cfg.IngressPort))
	if err != nil {
		_ = in.Close()
		return fmt.Errorf("kafka sink ingress: %w", err)
	}
	e.ingress = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: in, ReadHeaderTimeout: 10 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()); _ = in.Close() }()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("ingress", "err", err)
		}
	}()
	return nil
}

func (e *Engine) ns(ns string) string {
	if ns == "" {
		return e.cfg.Namespace
	}
	return ns
}

// url resolves a manifest target to a local URL.
func (e *Engine) url(t manifest.Target) (string, error) {
	switch {
	case t.URI != "":
		return e.rewrite(t.URI), nil
	case t.Sink != "":
		s := e.topo.Sink(t.Sink)
		return e.ingress + "/" + e.ns(s.Namespace) + "/" + s.Name + t.Path, nil
	case t.Function != "":
		p := e.pools[t.Function]
		if p == nil {
			return "", fmt.Errorf("function %s is not running", t.Function)
		}
		return p.URL() + t.Path, nil
	}
	return "", errors.New("empty target")
}

// rewrite points cluster KafkaSink ingress URLs at the local ingress.
func (e *Engine) rewrite(v string) string {
	for _, scheme := range []string{"http://", "https://"} {
		if strings.HasPrefix(v, scheme+ClusterSinkHost) {
			return e.ingress + strings.TrimPrefix(v, scheme+ClusterSinkHost)
		}
	}
	return v
}

// functionEnv is the environment of a function: the engine's own, the
// database addresses, func.yaml's literal envs, and K_SINK from its SinkBinding.
func (e *Engine) functionEnv(f manifest.Function) ([]string, error) {
	env := e.baseEnv()
	for _, v := range f.Run.Envs {
		if strings.Contains(v.Value, "{{") {
			continue // secrets and templates of the cluster: the engine sets these itself
		}
		env = append(env, v.Name+"="+e.rewrite(v.Value))
	}
	if b := e.topo.BindingFor(f.Name); b != nil {
		t, err := e.topo.Target(b.Spec.Sink)
		if err != nil {
			return nil, err
		}
		u, err := e.url(t)
		if err != nil {
			return nil, err
		}
		env = append(env, "K_SINK="+u)
	}
	return env, nil
}

// baseEnv is the environment every process of the engine gets.
func (e *Engine) baseEnv() []string {
	return append(os.Environ(), "JOBFLOW_POSTGRES_URL="+e.pgURL, "JOBFLOW_CLICKHOUSE_ADDR="+e.chAddr,
		"JOBFLOW_DIALOGS_URL="+e.dlURL, "JOBFLOW_COUNTERS_URL="+e.ctURL, "KAFKA_BROKERS="+strings.Join(e.brokers, ","))
}

// startFunctions starts one pool per function: its activator listens on
// the function's route port (JOBFLOW_PORTS, or a free one) at once, and its
// instances start as its scale settings say (min-scale, else on the first
// request). Startup waits only for functions with min-scale above zero.
func (e *Engine) startFunctions(ctx, runCtx context.Context, wg *sync.WaitGroup) error {
	var waitFor []manifest.Function
	for _, f := range e.topo.Functions {
		scale, err := autoscaler.FromAnnotations(f.Deploy.Annotations)
		if err != nil {
			return fmt.Errorf("function %s: func.yaml: %w", f.Name, err)
		}
		scale = scale.Apply(autoscaler.Overrides{
			StableWindow: e.cfg.AutoscaleWindow, ScaleToZeroGrace: e.cfg.ScaleToZeroGrace, Tick: e.cfg.AutoscaleTick,
		})
		e.mu.Lock()
		ln := e.routes[f.Name]
		delete(e.routes, f.Name) // the pool owns it from here
		e.mu.Unlock()
		env, err := e.functionEnv(f)
		if err != nil {
			return fmt.Errorf("function %s: %w", f.Name, err)
		}
		logf, err := os.OpenFile(e.state("logs", f.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		p := scaler.New(scaler.Spec{
			Name: f.Name, Bin: e.state("bin", f.Name), Env: env, Log: logf, Addr: "127.0.0.1:0", Listener: ln,
			Scale: scale, HoldTimeout: e.cfg.StartTimeout,
		}, e.log)
		if err := p.Listen(); err != nil {
			logf.Close()
			return err
		}
		e.mu.Lock()
		e.pools[f.Name] = p
		e.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer logf.Close()
			if err := p.Run(runCtx); err != nil {
				e.log.Error("function pool stopped", "function", f.Name, "err", err)
			}
		}()
		if scale.MinScale > 0 {
			waitFor = append(waitFor, f)
		}
	}
	deadline := time.After(e.cfg.StartTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for _, f := range waitFor {
		p := e.pools[f.Name]
	wait:
		for {
			select {
			case <-p.Started():
				break wait
			case <-tick.C:
				if p.Restarts() >= 3 {
					return fmt.Errorf("function %s keeps exiting before it is ready; the end of %s:\n%s",
						f.Name, e.state("logs", f.Name+".log"), tail(e.state("logs", f.Name+".log"), 15))
				}
			case <-deadline:
				return fmt.Errorf("function %s not ready after %s: see %s", f.Name, e.cfg.StartTimeout, e.state("logs", f.Name+".log"))
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// reserveRoutes listens on the fixed ports of JOBFLOW_PORTS; each becomes
// its function's activator.
func (e *Engine) reserveRoutes() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.routes = map[string]net.Listener{}
	for _, f := range e.topo.Functions {
		if port, ok := e.cfg.Ports[f.Name]; ok {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return fmt.Errorf("function %s: port %d (JOBFLOW_PORTS): %w", f.Name, port, err)
			}
			e.routes[f.Name] = ln
		}
	}
	return nil
}

// releaseRoutes closes the reserved ports no pool took (startup failed).
func (e *Engine) releaseRoutes() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ln := range e.routes {
		_ = ln.Close()
	}
	e.routes = nil
}

// selectFunctions keeps only the functions of JOBFLOW_FUNCTIONS, and the
// sources and bindings that refer to them.
func (e *Engine) selectFunctions() error {
	if len(e.cfg.Functions) == 0 {
		return nil
	}
	keep := map[string]bool{}
	for _, n := range e.cfg.Functions {
		if e.topo.Function(n) == nil {
			return fmt.Errorf("JOBFLOW_FUNCTIONS: no function %q in functions/", n)
		}
		keep[n] = true
	}
	t := e.topo
	var fs []manifest.Function
	for _, f := range t.Functions {
		if keep[f.Name] {
			fs = append(fs, f)
		}
	}
	var ss []manifest.KafkaSource
	for _, s := range t.Sources {
		if s.Spec.Sink.Ref != nil && keep[s.Spec.Sink.Ref.Name] {
			ss = append(ss, s)
		}
	}
	var bs []manifest.SinkBinding
	for _, b := range t.Bindings {
		if keep[b.Spec.Subject.Name] {
			bs = append(bs, b)
		}
	}
	t.Functions, t.Sources, t.Bindings = fs, ss, bs
	return nil
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

func (e *Engine) startSources(ctx context.Context, wg *sync.WaitGroup) error {
	// Deliveries to a function go to its pool in-process (the activator's
	// logic without its HTTP server hop); dead-letter and other sinks over HTTP.
	e.mu.Lock()
	pools := make([]*scaler.Pool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	e.mu.Unlock()
	sender := kafkasource.NewSenderWith(scaler.Transport(kafkasource.NewTransport(), pools...))
	for _, s := range e.topo.Sources {
		policy, err := manifest.DeliveryPolicy(s.Spec.Delivery)
		if err != nil {
			return fmt.Errorf("kafkasource %s: %w", s.Name, err)
		}
		t, err := e.topo.Target(s.Spec.Sink)
		if err != nil {
			return err
		}
		target, err := e.url(t)
		if err != nil {
			return err
		}
		var dls string
		if d := s.Spec.Delivery; d != nil && d.DeadLetterSink != nil {
			dt, err := e.topo.Target(*d.DeadLetterSink)
			if err != nil {
				return err
			}
			if dls, err = e.url(dt); err != nil {
				return err
			}
		}
		maxInFlight, _ := s.MaxInFlight()
		batchSize, _ := s.BatchSize()
		if e.cfg.OneEventPerRequest {
			batchSize = 1
		}
		src, err := kafkasource.New(kafkasource.Config{
			Name: s.Name, Namespace: e.ns(s.Namespace), Brokers: e.brokers, Topics: s.Spec.Topics,
			Group: s.Spec.ConsumerGroup, InitialOffset: s.Spec.InitialOffset, Ordered: s.Ordered(),
			MaxInFlight: maxInFlight, BatchSize: batchSize, CommitInterval: e.cfg.CommitInterval,
			Retrier: kafkasource.Retrier{Sender: sender, Policy: policy, Target: target, DeadLetter: dls},
		}, e.log)
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.sources = append(e.sources, src)
		e.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := src.Run(ctx); err != nil {
				e.log.Error("source stopped", "source", src.Name(), "err", err)
			}
		}()
	}
	for _, s := range e.Sources() {
		select {
		case <-s.Ready():
		case <-time.After(30 * time.Second):
			return fmt.Errorf("kafkasource %s: no partitions assigned after 30s", s.Name())
		}
	}
	return nil
}

// Status is the engine's state, served as JSON on /status.
type Status struct {
	Functions map[string]FunctionStatus    `json:"functions"`
	Sources   map[string]kafkasource.Stats `json:"sources"`
}

// FunctionStatus of one function (or adapter: no Scale).
type FunctionStatus struct {
	URL      string `json:"url"`
	Ready    bool   `json:"ready"` // a function: its activator serves
	Restarts int64  `json:"restarts"`
	// Scale: instances, cold starts, requests held by the activator,
	// in-flight per instance.
	Scale *scaler.Status `json:"scale,omitempty"`
}

// Status returns the current status.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{Functions: map[string]FunctionStatus{}, Sources: map[string]kafkasource.Stats{}}
	for n, p := range e.pools {
		sc := p.Status()
		st.Functions[n] = FunctionStatus{URL: p.URL(), Ready: p.Ready(), Restarts: p.Restarts(), Scale: &sc}
	}
	for n, p := range e.adapters {
		st.Functions[n] = FunctionStatus{URL: p.URL(), Ready: p.Ready(), Restarts: p.Restarts()}
	}
	for _, s := range e.sources {
		st.Sources[s.Name()] = s.Stats()
	}
	return st
}

func (e *Engine) startAdmin() (io.Closer, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, e.Status()) })
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", e.cfg.AdminPort))
	if err != nil {
		return nil, fmt.Errorf("admin port: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

func (e *Engine) printReady() {
	e.say("")
	e.say("jobflow is up.")
	if p := e.pools["receiver"]; p != nil {
		e.say("  send a job:      curl -X POST %s/create/job -d '{\"sleep\":100,\"data_size\":1024}'", p.URL())
		e.say("  or a CloudEvent: curl %s/ -H 'ce-specversion: 1.0' -H 'ce-type: dev.jobflow.job.requested' -H 'ce-source: /me' -H 'ce-id: 1' -H 'content-type: application/json' -d '{}'", p.URL())
	}
	if p := e.pools["query"]; p != nil {
		e.say("  job status:      curl %s/info/<id>     analytics: curl %s/stats", p.URL(), p.URL())
		e.say("  counters:        curl %s/counters/<user id>", p.URL())
	}
	if p := e.pools["dialogs"]; p != nil {
		e.say("  dialogs:         curl -X POST %s/users -d '{\"name\":\"ann\"}'   (see docs/COUNTERS.md)", p.URL())
	}
	e.say("  engine:          http://127.0.0.1:%d/status  /metrics     logs: %s", e.cfg.AdminPort, e.state("logs"))
	e.say("Ctrl-C stops everything.")
	e.say("")
}

// statusLoop prints one line per stage when something changed.
func (e *Engine) statusLoop(ctx context.Context) {
	if e.cfg.StatusInterval <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(e.cfg.StatusInterval)
	defer t.Stop()
	prev := map[string]kafkasource.Stats{}
	prevScale := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := e.Status()
		names := make([]string, 0, len(st.Sources))
		for n := range st.Sources {
			names = append(names, n)
		}
		sort.Strings(names)
		fnames := make([]string, 0, len(st.Functions))
		for n := range st.Functions {
			fnames = append(fnames, n)
		}
		sort.Strings(fnames)
		var fl []string
		for _, n := range fnames {
			fs := st.Functions[n]
			state := "ready"
			if !fs.Ready {
				state = "NOT READY"
			}
			if sc := fs.Scale; sc != nil {
				state = fmt.Sprintf("%d", sc.Instances)
				if sc.Starting+sc.Draining > 0 {
					state += fmt.Sprintf(" (+%d starting, -%d draining)", sc.Starting, sc.Draining)
				}
				if sc.Held > 0 {
					state += fmt.Sprintf(" held %d", sc.Held)
				}
			}
			if fs.Restarts > 0 {
				state += fmt.Sprintf(" (restarts %d)", fs.Restarts)
			}
			fl = append(fl, n+" "+state)
		}
		scale := strings.Join(fl, ", ")
		changed := scale != prevScale
		for _, n := range names {
			if st.Sources[n] != prev[n] {
				changed = true
			}
		}
		if !changed {
			continue
		}
		now := time.Now().Format("15:04:05")
		for _, n := range names {
			s, p := st.Sources[n], prev[n]
			rate := float64(s.Delivered-p.Delivered) / e.cfg.StatusInterval.Seconds()
			e.say("%s %-18s delivered %-8d %7.1f/s  in flight %-4d retries %-5d dead-lettered %-4d dropped %d",
				now, n, s.Delivered, rate, s.InFlight, s.Failures, s.DeadLettered, s.Dropped)
		}
		e.say("%s instances: %s", now, scale)
		prev, prevScale = st.Sources, scale
	}
}

func redact(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		if j := strings.Index(url[i+3:], "@"); j >= 0 {
			user := url[i+3 : i+3+j]
			if k := strings.Index(user, ":"); k >= 0 {
				return url[:i+3] + user[:k] + ":***" + url[i+3+j:]
			}
		}
	}
	return url
}
