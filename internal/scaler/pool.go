// Package scaler runs one function of the local engine as Knative Serving
// runs a revision: a pool of 0..N instances (supervised processes on free
// ports) behind an activator that listens on the function's address. The
// activator holds requests while no instance is ready (and starts one when
// the pool is at zero), sends each request to the least-loaded ready
// instance with per-instance concurrency accounting, and feeds the observed
// concurrency (or request rate) to a KPA autoscaler (internal/autoscaler)
// that adds instances under load and drains and stops them, down to zero,
// when idle. Draining waits for an instance's requests to finish, so no
// request fails because of scaling.
package scaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/internal/procs"
)

// Spec of a pool.
type Spec struct {
	Name string
	Bin  string
	Env  []string  // full environment of each instance (PORT is added)
	Log  io.Writer // stdout and stderr of the instances
	// Addr is where the activator listens (host:port; port 0 picks one),
	// unless Listener is set (a port the caller reserved).
	Addr     string
	Listener net.Listener
	Scale    autoscaler.Config
	// HoldTimeout is how long a request may wait for a ready instance
	// before it is answered 503 (default 2 minutes).
	HoldTimeout time.Duration
	// MaxBodyBytes caps request bodies, which the activator buffers so it
	// can resend a request an instance never received (default 32 MiB).
	MaxBodyBytes int64
}

// Pool is a function's instances and its activator.
type Pool struct {
	spec      Spec
	log       *slog.Logger
	ln        net.Listener
	url       string
	srv       *http.Server
	transport *http.Transport
	listening atomic.Bool

	mu        sync.Mutex
	as        *autoscaler.Autoscaler
	decision  autoscaler.Decision
	insts     []*instance
	changed   chan struct{} // closed and replaced when instances change
	started   chan struct{} // closed when an instance is first ready
	startOnce sync.Once
	stopping  bool
	goneRest  int64 // restarts of instances already stopped
	colds     []time.Duration
	coldCount int64
	lastCold  time.Duration
	instWG    sync.WaitGroup

	conc      concurrency
	arrivals  atomic.Int64 // requests since the last sample (rps metric)
	held      atomic.Int64
	heldTotal atomic.Int64
	requests  atomic.Int64
	errs      atomic.Int64
	lastTick  time.Time

	// metric children resolved once (no label lookups per request)
	gInflight, gHeld interface {
		Inc()
		Dec()
	}
	cHeldTotal interface{ Inc() }
	hHold      interface{ Observe(float64) }
	cReqMu     sync.Mutex
	cReq       map[int]interface{ Inc() }
}

type instance struct {
	slot      int
	port      int
	proc      *procs.Process
	cancel    context.CancelFunc
	done      chan struct{}
	inflight  atomic.Int64
	requests  atomic.Int64
	coldStart atomic.Int64 // ns, 0 until ready
	draining  bool         // under Pool.mu
	created   time.Time
}

// New returns a pool; Listen then Run start it.
func New(spec Spec, log *slog.Logger) *Pool {
	if spec.HoldTimeout <= 0 {
		spec.HoldTimeout = 2 * time.Minute
	}
	if spec.MaxBodyBytes <= 0 {
		spec.MaxBodyBytes = 32 << 20
	}
	if spec.Scale.Tick <= 0 {
		spec.Scale = autoscaler.Defaults()
	}
	return &Pool{
		gInflight: mInflight.WithLabelValues(spec.Name), gHeld: mHeld.WithLabelValues(spec.Name),
		cHeldTotal: mHeldTotal.WithLabelValues(spec.Name), hHold: mHoldSeconds.WithLabelValues(spec.Name),
		cReq: map[int]interface{ Inc() }{},
		spec: spec, log: log.With("function", spec.Name),
		changed: make(chan struct{}), started: make(chan struct{}),
		transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Listen binds the activator's address; the pool counts as ready (Knative:
// the route answers) from then on, even with zero instances.
func (p *Pool) Listen() error {
	if p.spec.Listener != nil {
		p.ln, p.url = p.spec.Listener, "http://"+p.spec.Listener.Addr().String()
		return nil
	}
	addr := p.spec.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("activator of %s: %w", p.spec.Name, err)
	}
	p.ln, p.url = ln, "http://"+ln.Addr().String()
	return nil
}

// URL is where the activator serves the function.
func (p *Pool) URL() string { return p.url }

// Ready reports whether the activator is serving (instances or not).
func (p *Pool) Ready() bool { return p.listening.Load() }

// Started is closed once an instance was first ready.
func (p *Pool) Started() <-chan struct{} { return p.started }

// Config is the scale configuration in force.
func (p *Pool) Config() autoscaler.Config { return p.spec.Scale }

// Run serves the activator, starts the minimum (or initial) instances and
// runs the autoscaler until ctx ends; then it stops accepting requests,
// lets the ones in flight finish, and stops every instance.
func (p *Pool) Run(ctx context.Context) error {
	if p.ln == nil {
		if err := p.Listen(); err != nil {
			return err
		}
	}
	now := time.Now()
	p.mu.Lock()
	p.as = autoscaler.New(p.spec.Scale, now)
	p.lastTick = now
	p.conc.reset(now)
	p.scaleToLocked(p.spec.Scale.Clamp(p.spec.Scale.InitialScale))
	p.mu.Unlock()

	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	srvDone := make(chan error, 1)
	go func() { srvDone <- p.srv.Serve(p.ln) }()
	p.listening.Store(true)

	tick := time.NewTicker(p.spec.Scale.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.shutdown()
			if err := <-srvDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		case now := <-tick.C:
			p.tick(now)
		case err := <-srvDone:
			p.shutdown()
			return fmt.Errorf("activator of %s: %w", p.spec.Name, err)
		}
	}
}

func (p *Pool) shutdown() {
	p.listening.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(sctx)
	p.mu.Lock()
	p.stopping = true
	for _, in := range p.insts {
		in.cancel()
	}
	p.mu.Unlock()
	p.instWG.Wait()
	p.transport.CloseIdleConnections()
	p.mu.Lock()
	for _, in := range p.insts {
		mInstanceInflight.DeleteLabelValues(p.spec.Name, strconv.Itoa(in.slot))
		p.goneRest += in.proc.Restarts()
	}
	p.insts = nil
	p.updateGaugesLocked()
	p.mu.Unlock()
}

// tick records the metric of the last interval and applies the decision.
func (p *Pool) tick(now time.Time) {
	avg := p.conc.average(now)
	arrivals := p.arrivals.Swap(0)
	p.mu.Lock()
	defer p.mu.Unlock()
	value := avg
	if p.spec.Scale.Metric == autoscaler.RPS {
		value = float64(arrivals) / max(now.Sub(p.lastTick).Seconds(), 1e-3)
	}
	p.lastTick = now
	p.as.Record(now, value)
	ready, _, _ := p.countsLocked()
	p.decision = p.as.Desired(now, ready)
	p.scaleToLocked(p.decision.Desired)
	mDesired.WithLabelValues(p.spec.Name).Set(float64(p.decision.Desired))
	mPanic.WithLabelValues(p.spec.Name).Set(b2f(p.decision.Panic))
	for _, in := range p.insts {
		mInstanceInflight.WithLabelValues(p.spec.Name, strconv.Itoa(in.slot)).Set(float64(in.inflight.Load()))
	}
}

// countsLocked returns ready (serving), starting and draining instances.
func (p *Pool) countsLocked() (ready, starting, draining int) {
	for _, in := range p.insts {
		switch {
		case in.draining:
			draining++
		case in.proc.Ready():
			ready++
		default:
			starting++
		}
	}
	return
}

// scaleToLocked starts or drains instances so n are not draining.
func (p *Pool) scaleToLocked(n int) {
	if p.stopping {
		return
	}
	var active []*instance
	for _, in := range p.insts {
		if !in.draining {
			active = append(active, in)
		}
	}
	for i := len(active); i < n; i++ {
		if err := p.startLocked(); err != nil {
			p.log.Error("start instance", "err", err)
			break
		}
	}
	if len(active) > n {
		// Drain the ones still starting first, then the least loaded.
		slices.SortStableFunc(active, func(a, b *instance) int {
			ra, rb := a.proc.Ready(), b.proc.Ready()
			if ra != rb {
				if !ra {
					return -1
				}
				return 1
			}
			return int(a.inflight.Load() - b.inflight.Load())
		})
		for _, in := range active[:len(active)-n] {
			in.draining = true
			go p.drain(in)
		}
	}
	p.updateGaugesLocked()
	p.notifyLocked()
}

func (p *Pool) startLocked() error {
	port, err := procs.FreePort()
	if err != nil {
		return err
	}
	slot := 0
	for used := true; used; {
		used = false
		for _, in := range p.insts {
			if in.slot == slot {
				used, slot = true, slot+1
				break
			}
		}
	}
	in := &instance{slot: slot, port: port, done: make(chan struct{}), created: time.Now()}
	in.proc = procs.New(procs.Spec{
		Name: p.spec.Name, Bin: p.spec.Bin, Env: p.spec.Env, Port: port, Log: p.spec.Log,
		OnReady: func(d time.Duration) { p.onReady(in, d) },
	}, p.log.With("slot", slot))
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	p.insts = append(p.insts, in)
	p.instWG.Add(1)
	go func() {
		defer p.instWG.Done()
		defer close(in.done)
		_ = in.proc.Run(ctx)
	}()
	p.log.Info("instance starting", "slot", slot, "port", port)
	return nil
}

func (p *Pool) onReady(in *instance, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in.coldStart.Store(int64(d))
	p.coldCount++
	p.lastCold = d
	p.colds = append(p.colds, d)
	if len(p.colds) > 10000 {
		p.colds = p.colds[len(p.colds)-5000:]
	}
	mColdStarts.WithLabelValues(p.spec.Name).Observe(d.Seconds())
	p.startOnce.Do(func() { close(p.started) })
	p.log.Info("instance ready", "slot", in.slot, "cold_start", d)
	p.updateGaugesLocked()
	p.notifyLocked()
}

// drain waits for an instance's requests to finish, then stops it.
func (p *Pool) drain(in *instance) {
	deadline := time.Now().Add(max(p.spec.HoldTimeout, 10*time.Minute))
	for in.inflight.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-in.done:
		case <-time.After(5 * time.Millisecond):
		}
	}
	in.cancel()
	<-in.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.insts, in); i >= 0 {
		p.insts = slices.Delete(p.insts, i, i+1)
		p.goneRest += in.proc.Restarts()
		mInstanceInflight.DeleteLabelValues(p.spec.Name, strconv.Itoa(in.slot))
	}
	p.log.Info("instance stopped", "slot", in.slot)
	p.updateGaugesLocked()
	p.notifyLocked()
}

func (p *Pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Pool) updateGaugesLocked() {
	r, s, d := p.countsLocked()
	mInstances.WithLabelValues(p.spec.Name, "ready").Set(float64(r))
	mInstances.WithLabelValues(p.spec.Name, "starting").Set(float64(s))
	mInstances.WithLabelValues(p.spec.Name, "draining").Set(float64(d))
}

// Wake starts an instance if the pool is at zero and waits until one is ready.
func (p *Pool) Wake(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.as == nil {
			p.mu.Unlock()
			return errors.New("pool is not running")
		}
		r, s, _ := p.countsLocked()
		if r > 0 {
			p.mu.Unlock()
			return nil
		}
		if r+s == 0 {
			p.as.Poke(time.Now())
			p.scaleToLocked(1)
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill kills the process of one running instance (tests use it to
// simulate a crash; the instance restarts, as a pod's container does). A
// pool at zero has nothing to kill: Kill waits up to 5 s for an instance.
func (p *Pool) Kill() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		for _, in := range p.insts {
			if !in.draining && in.proc.Pid() != 0 {
				err := in.proc.Kill()
				p.mu.Unlock()
				return err
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has no running instance", p.spec.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restarts counts restarts of instances after unexpected exits.
func (p *Pool) Restarts() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.goneRest
	for _, in := range p.insts {
		n += in.proc.Restarts()
	}
	return n
}

// Status of a pool.
type Status struct {
	Instances   int     `json:"instances"` // ready and serving
	Starting    int     `json:"starting"`
	Draining    int     `json:"draining"`
	Desired     int     `json:"desired"`
	MinScale    int     `json:"min_scale"`
	MaxScale    int     `json:"max_scale"`
	Metric      string  `json:"metric"`
	Target      float64 `json:"target_per_instance"`
	StableValue float64 `json:"stable_value"`
	PanicValue  float64 `json:"panic_value"`
	Panic       bool    `json:"panic"`
	Held        int64   `json:"held"`       // requests waiting for an instance now
	HeldTotal   int64   `json:"held_total"` // requests that had to wait
	InFlight    int64   `json:"in_flight"`  // requests at instances now
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"` // answered by the activator itself with 5xx
	ColdStarts  int64   `json:"cold_starts"`
	// Cold start = instance process start to its first ready answer.
	ColdStartLastMs float64          `json:"cold_start_last_ms"`
	ColdStartP50Ms  float64          `json:"cold_start_p50_ms"`
	ColdStartP99Ms  float64          `json:"cold_start_p99_ms"`
	PerInstance     []InstanceStatus `json:"per_instance"`
}

// InstanceStatus of one instance.
type InstanceStatus struct {
	Slot        int     `json:"slot"`
	URL         string  `json:"url"`
	PID         int     `json:"pid"`
	Ready       bool    `json:"ready"`
	Draining    bool    `json:"draining"`
	InFlight    int64   `json:"in_flight"`
	Requests    int64   `json:"requests"`
	ColdStartMs float64 `json:"cold_start_ms"`
	RSSKB       int64   `json:"rss_kb"`
	AgeSeconds  float64 `json:"age_s"`
}

// Status returns the pool's current state.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, s, d := p.countsLocked()
	c := p.spec.Scale
	st := Status{
		Instances: r, Starting: s, Draining: d, Desired: p.decision.Desired,
		MinScale: c.MinScale, MaxScale: c.MaxScale, Metric: c.Metric, Target: c.TargetPerInstance(),
		StableValue: p.decision.StableValue, PanicValue: p.decision.PanicValue, Panic: p.decision.Panic,
		Held: p.held.Load(), HeldTotal: p.heldTotal.Load(), Requests: p.requests.Load(), Errors: p.errs.Load(),
		ColdStarts: p.coldCount, ColdStartLastMs: ms(p.lastCold),
		PerInstance: []InstanceStatus{},
	}
	if len(p.colds) > 0 {
		sorted := slices.Clone(p.colds)
		slices.Sort(sorted)
		st.ColdStartP50Ms, st.ColdStartP99Ms = ms(Percentile(sorted, 50)), ms(Percentile(sorted, 99))
	}
	for _, in := range p.insts {
		st.InFlight += in.inflight.Load()
		pid := in.proc.Pid()
		st.PerInstance = append(st.PerInstance, InstanceStatus{
			Slot: in.slot, URL: fmt.Sprintf("http://127.0.0.1:%d", in.port), PID: pid,
			Ready: in.proc.Ready(), Draining: in.draining, InFlight: in.inflight.Load(), Requests: in.requests.Load(),
			ColdStartMs: ms(time.Duration(in.coldStart.Load())), RSSKB: rssKB(pid), AgeSeconds: time.Since(in.created).Seconds(),
		})
	}
	return st
}

// Percentile of sorted durations (nearest rank).
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// rssKB reads VmRSS of a process from /proc (0 when unknown).
func rssKB(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// concurrency integrates the number of requests in the activator over time,
// so an interval's average concurrency is exact (as queue-proxy reports it).
type concurrency struct {
	mu   sync.Mutex
	n    int
	last time.Time
	from time.Time
	area float64
}

func (c *concurrency) reset(now time.Time) {
	c.mu.Lock()
	c.last, c.from, c.area = now, now, 0
	c.mu.Unlock()
}

func (c *concurrency) add(now time.Time, delta int) {
	c.mu.Lock()
	if !c.last.IsZero() {
		c.area += float64(c.n) * now.Sub(c.last).Seconds()
	}
	c.last = now
	c.n += delta
	c.mu.Unlock()
}

func (c *concurrency) average(now time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.area += float64(c.n) * now.Sub(c.last).Seconds()
	c.last = now
	span := now.Sub(c.from).Seconds()
	avg := float64(c.n)
	if span > 0 {
		avg = c.area / span
	}
	c.from, c.area = now, 0
	return avg
}
