package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/procs"
)

// e2eFunctions are the functions of the job pipeline the e2e part runs.
var e2eFunctions = []string{"receiver", "processor", "converter", "pgsink", "chsink", "query"}

// baselineRoles are the processes of bench/baseline.
var baselineRoles = []string{"receiver", "processor", "converter", "pgwriter", "chwriter"}

// system is a job pipeline under test, running in child processes.
type system struct {
	createURL string // POST /create/job
	infoURL   string // GET /info/<id> ("" for none)
	procs     func() map[string][]int
	stop      func()
}

// buildE2E builds `jobflow`, the pipeline's functions (where the engine
// looks for them with JOBFLOW_SKIP_BUILD) and the baseline.
func (b *bench) buildE2E() error {
	if err := buildSinks(b.o.Root, b.e2eEngineDir(), e2eFunctions...); err != nil {
		return err
	}
	for bin, pkg := range map[string]string{"jobflow": "./cmd/jobflow", "jobflow-baseline": "./bench/baseline"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(b.o.Dir, bin), pkg)
		cmd.Dir = b.o.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}

func (b *bench) e2eEngineDir() string { return filepath.Join(b.o.Dir, "e2e-engine") }

// dbProcs are the databases' processes, when their pid files are found.
func (b *bench) dbProcs(m map[string][]int) {
	if pid := pidFrom(b.o.E2E.PGPidFile); pid > 0 {
		m["postgres"] = processTree(pid)
	}
	if pid := pidFrom(b.o.E2E.CHPidFile); pid > 0 {
		m["clickhouse"] = []int{pid}
	}
}

// startChild starts bin with args and env, its output in log.
func startChild(bin, dir, log string, env []string, args ...string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, append(os.Environ(), env...), logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	return cmd, nil
}

// stopChild sends SIGTERM and waits for the process to end (SIGKILL after
// a minute).
func stopChild(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 600; i++ {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

// startJobflow runs `jobflow up` with the pipeline's functions against the
// bench's broker and databases.
func (b *bench) startJobflow(br *broker, pgURL, chDB string, oneEvent bool) (*system, error) {
	ports := make([]int, 5)
	for i := range ports {
		p, err := procs.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	recv, query, ingress, brokerPort, admin := ports[0], ports[1], ports[2], ports[3], ports[4]
	env := []string{
		"KAFKA_BROKERS=" + strings.Join(br.addrs, ","), "JOBFLOW_ROOT=" + b.o.Root, "JOBFLOW_DIR=" + b.e2eEngineDir(),
		"JOBFLOW_POSTGRES_URL=" + pgURL, "JOBFLOW_CLICKHOUSE_ADDR=" + b.o.ClickHouseAddr, "JOBFLOW_CLICKHOUSE_DB=" + chDB,
		"JOBFLOW_ADAPTERS=false", "JOBFLOW_SKIP_BUILD=true", "JOBFLOW_STATUS_INTERVAL=0",
		"JOBFLOW_FUNCTIONS=" + strings.Join(e2eFunctions, ","),
		fmt.Sprintf("JOBFLOW_PORTS=receiver:%d,query:%d", recv, query),
		fmt.Sprintf("JOBFLOW_INGRESS_PORT=%d", ingress), fmt.Sprintf("JOBFLOW_BROKER_PORT=%d", brokerPort),
		fmt.Sprintf("JOBFLOW_ADMIN_PORT=%d", admin), fmt.Sprintf("JOBFLOW_ONE_EVENT_PER_REQUEST=%t", oneEvent),
	}
	cmd, err := startChild(filepath.Join(b.o.Dir, "jobflow"), b.o.Root, filepath.Join(b.o.Dir, "e2e-jobflow.log"), env, "up")
	if err != nil {
		return nil, err
	}
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", admin)
	s := &system{
		createURL: fmt.Sprintf("http://127.0.0.1:%d/create/job", recv),
		infoURL:   fmt.Sprintf("http://127.0.0.1:%d/info/", query),
		stop:      func() { stopChild(cmd) },
	}
	s.procs = func() map[string][]int {
		m := map[string][]int{"engine": {cmd.Process.Pid}, "broker": {br.cmd.Process.Pid}}
		if st, err := engineStatus(adminURL); err == nil {
			for name, f := range st.Functions {
				if f.Scale != nil {
					for _, in := range f.Scale.PerInstance {
						if in.PID > 0 {
							m[name] = append(m[name], in.PID)
						}
					}
				}
			}
		}
		b.dbProcs(m)
		return m
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := engineStatus(adminURL)
		ready := err == nil && len(st.Functions) == len(e2eFunctions)
		for _, f := range st.Functions {
			ready = ready && f.Ready
		}
		if ready {
			return s, nil
		}
		if cmd.Process.Signal(syscall.Signal(0)) != nil || time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("jobflow up not ready (see %s): %v", filepath.Join(b.o.Dir, "e2e-jobflow.log"), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func engineStatus(adminURL string) (engine.Status, error) {
	var st engine.Status
	resp, err := http.Get(adminURL + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// startBaseline runs the baseline's processes.
func (b *bench) startBaseline(br *broker, pgURL, chDB string) (*system, error) {
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	env := []string{"BASELINE_BROKERS=" + strings.Join(br.addrs, ","), "BASELINE_LISTEN=" + listen,
		"BASELINE_POSTGRES_URL=" + pgURL, "BASELINE_CLICKHOUSE_ADDR=" + b.o.ClickHouseAddr, "BASELINE_CLICKHOUSE_DB=" + chDB}
	cmds := map[string]*exec.Cmd{}
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			stopChild(c)
		}
	}
	for _, role := range baselineRoles {
		cmd, err := startChild(filepath.Join(b.o.Dir, "jobflow-baseline"), b.o.Root,
			filepath.Join(b.o.Dir, "e2e-baseline-"+role+".log"), env, role)
		if err != nil {
			stop()
			return nil, err
		}
		cmds[role] = cmd
	}
	s := &system{createURL: "http://" + listen + "/create/job", stop: stop}
	s.procs = func() map[string][]int {
		m := map[string][]int{"broker": {br.cmd.Process.Pid}}
		for role, c := range cmds {
			m[role] = []int{c.Process.Pid}
		}
		b.dbProcs(m)
		return m
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	for {
		if resp, err := http.Get("http://" + listen + "/health"); err == nil {
			resp.Body.Close()
			return s, nil
		}
		if ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("baseline receiver not answering on %s (see %s)", listen, filepath.Join(b.o.Dir, "e2e-baseline-receiver.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
