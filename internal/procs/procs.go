// Package procs runs a function as a supervised local process: started
// with its environment, probed on /health/readiness, restarted with backoff
// when it dies (as a pod is), and stopped with SIGTERM, then SIGKILL.
package procs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec of a process.
type Spec struct {
	Name string
	Bin  string
	Env  []string // full environment (PORT is added)
	Port int
	Log  io.Writer // stdout and stderr of the process
	// OnReady, if set, is called when a start of the process first answers
	// its readiness probe, with the time from exec to that answer.
	OnReady func(coldStart time.Duration)
}

// Process is one supervised process.
type Process struct {
	spec     Spec
	log      *slog.Logger
	restarts atomic.Int64
	ready    atomic.Bool
	mu       sync.Mutex
	cmd      *exec.Cmd
	started  chan struct{}
	once     sync.Once
}

// New returns an unstarted process.
func New(spec Spec, log *slog.Logger) *Process {
	return &Process{spec: spec, log: log.With("function", spec.Name), started: make(chan struct{})}
}

// URL is where the process serves.
func (p *Process) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.spec.Port) }

// Ready reports whether the last probe succeeded.
func (p *Process) Ready() bool { return p.ready.Load() }

// Restarts counts restarts after unexpected exits.
func (p *Process) Restarts() int64 { return p.restarts.Load() }

// Started is closed once the process first answered its readiness probe.
func (p *Process) Started() <-chan struct{} { return p.started }

// Pid is the process id of the running process, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill kills the running process (tests use it to simulate a crash).
func (p *Process) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("%s is not running", p.spec.Name)
	}
	return p.cmd.Process.Kill()
}

// Run keeps the process running until ctx ends.
func (p *Process) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := p.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		p.restarts.Add(1)
		if time.Since(began) > 30*time.Second {
			backoff = 100 * time.Millisecond
		}
		p.log.Warn("function exited; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

func (p *Process) runOnce(ctx context.Context) error {
	cmd := exec.Command(p.spec.Bin)
	cmd.Env = append(append([]string{}, p.spec.Env...), fmt.Sprintf("PORT=%d", p.spec.Port), "LISTEN_ADDRESS=127.0.0.1:"+fmt.Sprint(p.spec.Port))
	cmd.Stdout, cmd.Stderr = p.spec.Log, p.spec.Log
	// Its own process group: a Ctrl-C at the terminal reaches the engine only,
	// which stops sources first and then functions, in order. Pdeathsig
	// still ends the process if the engine dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.spec.Bin, err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go p.probe(probeCtx, began)

	select {
	case err := <-exited:
		p.ready.Store(false)
		return fmt.Errorf("exited: %w", err)
	case <-ctx.Done():
	}
	p.ready.Store(false)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return nil
}

// probe polls /health/readiness: every 2 ms until first ready (so a cold
// start is measured to a few ms), then every second.
func (p *Process) probe(ctx context.Context, began time.Time) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := p.URL() + "/health/readiness"
	interval, first, failures := 2*time.Millisecond, true, 0
	for {
		ok := false
		if resp, err := client.Get(url); err == nil {
			ok = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		// Once ready, an instance is unready only after FailureThreshold
		// probes in a row fail (Kubernetes' failureThreshold, default 3): a
		// probe slow under load must not take a busy instance out of routing.
		if ok {
			failures = 0
			p.ready.Store(true)
		} else if failures++; first || failures >= FailureThreshold {
			p.ready.Store(false)
		}
		if ok {
			if first && p.spec.OnReady != nil {
				p.spec.OnReady(time.Since(began))
			}
			first = false
			p.once.Do(func() { close(p.started) })
			interval = time.Second
		} else if first && time.Since(began) > 2*time.Second {
			interval = 10 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// FailureThreshold is how many probes in a row must fail before a ready
// process counts as not ready.
const FailureThreshold = 3

// FreePort is a free loopback port for a server to listen on.
//
// It is taken below the kernel's ephemeral range (ip_local_port_range),
// where the kernel never assigns ports on its own: a port the kernel hands
// out for "port 0" is also the kind it gives to outgoing connections, and
// under load one of those took a port between FreePort and the server's
// listen ("address already in use"). A port is not handed out twice by
// one process.
func FreePort() (int, error) {
	lo, hi := 10000, ephemeralLow()
	freePorts.Lock()
	defer freePorts.Unlock()
	for range 200 {
		if hi-lo < 1000 {
			break
		}
		p := lo + rand.IntN(hi-lo)
		if freePorts.given[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		freePorts.given[p] = true
		return p, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var freePorts = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
