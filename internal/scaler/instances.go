package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobflow/jobflow/internal/procs"
)

// instanceSet is a function's 0..N instances: supervised processes
// (internal/procs) on free ports, each probed for readiness and restarted
// when it dies. scaleTo starts instances or drains them: a draining
// instance takes no new request and stops once its requests are answered.
type instanceSet struct {
	proc         procs.Spec // of every instance; Port and OnReady are set per instance
	drainTimeout time.Duration
	log          *slog.Logger
	colds        coldStarts
	started      chan struct{} // closed when an instance is first ready
	startOnce    sync.Once
	wg           sync.WaitGroup // the instances' supervisors

	mu           sync.Mutex
	insts        []*instance
	changed      chan struct{} // closed and replaced when instances change
	stopping     bool
	goneRestarts int64 // restarts of instances already stopped
}

// instance is one supervised process of the set.
type instance struct {
	slot      int
	port      int
	addr      string // host:port it serves on
	proc      *procs.Process
	cancel    context.CancelFunc
	done      chan struct{}
	inflight  atomic.Int64
	requests  atomic.Int64
	coldStart atomic.Int64 // ns, 0 until ready
	draining  bool         // under instanceSet.mu
	created   time.Time
}

// errStopping answers an acquire once the set is stopping.
var errStopping = errors.New("stopping")

// newInstanceSet returns an empty set of instances of proc. Draining waits
// up to drainTimeout for an instance's requests before stopping it.
func newInstanceSet(proc procs.Spec, drainTimeout time.Duration, log *slog.Logger) *instanceSet {
	return &instanceSet{proc: proc, drainTimeout: drainTimeout, log: log,
		changed: make(chan struct{}), started: make(chan struct{})}
}

func (in *instance) host() string { return in.addr }

func (in *instance) release(answered bool) {
	in.inflight.Add(-1)
	if answered {
		in.requests.Add(1)
	}
}

// counts returns the ready (serving), starting and draining instances.
func (s *instanceSet) counts() (ready, starting, draining int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countsLocked()
}

func (s *instanceSet) countsLocked() (ready, starting, draining int) {
	for _, in := range s.insts {
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

// changes is closed at the next change of the set (an instance added,
// ready or stopped); readiness lost after a restart is not announced.
func (s *instanceSet) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// acquire counts one request on the least-loaded ready instance and
// returns it. With none ready it returns nil and a channel closed at the
// next change, or errStopping.
func (s *instanceSet) acquire() (lease, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *instance
	for _, in := range s.insts {
		if in.draining || !in.proc.Ready() {
			continue
		}
		if best == nil || in.inflight.Load() < best.inflight.Load() {
			best = in
		}
	}
	if best != nil {
		best.inflight.Add(1)
		return best, nil, nil
	}
	if s.stopping {
		return nil, nil, errStopping
	}
	return nil, s.changed, nil
}

// scaleTo starts or drains instances so that n are not draining. Instances
// still starting drain first, then the least loaded.
func (s *instanceSet) scaleTo(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return
	}
	var active []*instance
	for _, in := range s.insts {
		if !in.draining {
			active = append(active, in)
		}
	}
	for i := len(active); i < n; i++ {
		if err := s.startLocked(); err != nil {
			s.log.Error("start instance", "err", err)
			break
		}
	}
	if len(active) > n {
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
			go s.drain(in)
		}
	}
	s.changedLocked()
}

func (s *instanceSet) startLocked() error {
	port, err := procs.FreePort()
	if err != nil {
		return fmt.Errorf("port for an instance of %s: %w", s.proc.Name, err)
	}
	slot := s.freeSlotLocked()
	in := &instance{slot: slot, port: port, addr: "127.0.0.1:" + strconv.Itoa(port),
		done: make(chan struct{}), created: time.Now()}
	spec := s.proc
	spec.Port = port
	spec.OnReady = func(d time.Duration) { s.onReady(in, d) }
	in.proc = procs.New(spec, s.log.With("slot", slot))
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	s.insts = append(s.insts, in)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(in.done)
		_ = in.proc.Run(ctx)
	}()
	s.log.Info("instance starting", "slot", slot, "port", port)
	return nil
}

// freeSlotLocked is the lowest slot number no instance uses, so slot
// labels stay few however often instances come and go.
func (s *instanceSet) freeSlotLocked() int {
	slot := 0
	for slices.ContainsFunc(s.insts, func(in *instance) bool { return in.slot == slot }) {
		slot++
	}
	return slot
}

func (s *instanceSet) onReady(in *instance, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in.coldStart.Store(int64(d))
	s.colds.add(d)
	mColdStarts.WithLabelValues(s.proc.Name).Observe(d.Seconds())
	s.startOnce.Do(func() { close(s.started) })
	s.log.Info("instance ready", "slot", in.slot, "cold_start", d)
	s.changedLocked()
}

// drain waits for an instance's requests to finish, then stops it.
func (s *instanceSet) drain(in *instance) {
	deadline := time.Now().Add(s.drainTimeout)
	for in.inflight.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-in.done:
		case <-time.After(5 * time.Millisecond):
		}
	}
	in.cancel()
	<-in.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.insts, in); i >= 0 {
		s.insts = slices.Delete(s.insts, i, i+1)
		s.goneRestarts += in.proc.Restarts()
		forgetInstance(s.proc.Name, in)
	}
	s.log.Info("instance stopped", "slot", in.slot)
	s.changedLocked()
}

// changedLocked publishes the gauges and wakes whoever waits for a change.
func (s *instanceSet) changedLocked() {
	r, st, d := s.countsLocked()
	publishInstances(s.proc.Name, r, st, d, s.insts)
	close(s.changed)
	s.changed = make(chan struct{})
}

// stop stops every instance (not waiting for their requests: the caller
// has stopped sending) and starts none from then on.
func (s *instanceSet) stop() {
	s.mu.Lock()
	s.stopping = true
	for _, in := range s.insts {
		in.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.insts {
		forgetInstance(s.proc.Name, in)
		s.goneRestarts += in.proc.Restarts()
	}
	s.insts = nil
	r, st, d := s.countsLocked()
	publishInstances(s.proc.Name, r, st, d, nil)
}

// kill kills the process of one running instance, waiting up to wait for
// one to run.
func (s *instanceSet) kill(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		s.mu.Lock()
		for _, in := range s.insts {
			if !in.draining && in.proc.Pid() != 0 {
				err := in.proc.Kill()
				s.mu.Unlock()
				return err
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has no running instance", s.proc.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restarts counts restarts of instances after unexpected exits.
func (s *instanceSet) restarts() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.goneRestarts
	for _, in := range s.insts {
		n += in.proc.Restarts()
	}
	return n
}

// fill sets the instance fields of a status.
func (s *instanceSet) fill(st *Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Instances, st.Starting, st.Draining = s.countsLocked()
	st.PerInstance = []InstanceStatus{}
	for _, in := range s.insts {
		st.InFlight += in.inflight.Load()
		pid := in.proc.Pid()
		st.PerInstance = append(st.PerInstance, InstanceStatus{
			Slot: in.slot, URL: "http://" + in.addr, PID: pid,
			Ready: in.proc.Ready(), Draining: in.draining, InFlight: in.inflight.Load(), Requests: in.requests.Load(),
			ColdStartMs: ms(time.Duration(in.coldStart.Load())), RSSKB: rssKB(pid), AgeSeconds: time.Since(in.created).Seconds(),
		})
	}
	s.colds.fill(st)
}
