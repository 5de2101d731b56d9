// Package chaos is the chaos suite (issue #20): it runs the whole local
// system (`jobflow up` as a child process, PostgreSQL and ClickHouse
// started by the project's scripts) under steady load, injects faults
// (SIGKILL of function instances, of the CDC source, of the engine itself;
// restarts of PostgreSQL and ClickHouse), then checks that no accepted
// request was lost and no effect doubled, and prints a table.
//
// One job per file: system.go (the system under test), jobs.go and
// counters.go (load and accounting per domain), faults.go (the injectors),
// recover.go (time to recover), run.go (the run), report.go (the table).
package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/services"
)

// Ports of the system under test.
type Ports struct {
	Postgres, ClickHouseTCP, ClickHouseHTTP int
	Kafka, Ingress, Broker, Admin           int
	Functions                               map[string]int // JOBFLOW_PORTS: receiver, dialogs...
}

// System is the system under test: database servers of its own under
// Dir, and the engine as a child process on Dir/engine (a persistent
// JOBFLOW_DIR, so the embedded broker's data survives a SIGKILL).
type System struct {
	Root, Dir, Bin string // repository, state, the jobflow binary
	Ports          Ports
	Log            func(format string, args ...any)

	pg, ch  services.Script
	engine  *exec.Cmd
	exited  chan struct{}
	starts  int
	logFile *os.File
}

// PostgresURL of database db on the system's server.
func (s *System) PostgresURL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Ports.Postgres, db)
}

// ClickHouseAddr is the native address of the system's ClickHouse.
func (s *System) ClickHouseAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.Ports.ClickHouseTCP) }

// KafkaAddr is the embedded broker's address.
func (s *System) KafkaAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.Ports.Kafka) }

// StartServers starts PostgreSQL and ClickHouse under Dir.
func (s *System) StartServers(ctx context.Context) error {
	// PostgreSQL runs as the postgres user when the suite runs as root: it
	// must reach its data dir under Dir (os.MkdirTemp makes 0700).
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	s.pg = services.Postgres(s.Root, filepath.Join(s.Dir, "postgres"), s.Ports.Postgres)
	s.ch = services.ClickHouse(s.Root, filepath.Join(s.Dir, "clickhouse"), s.Ports.ClickHouseTCP, s.Ports.ClickHouseHTTP)
	if _, err := s.pg.Start(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if _, err := s.ch.Start(ctx); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	return nil
}

// RestartPostgres stops PostgreSQL (fast shutdown: clients are cut) and
// starts it again after down.
func (s *System) RestartPostgres(ctx context.Context, down time.Duration) error {
	if err := s.pg.Stop(ctx); err != nil {
		return err
	}
	sleep(ctx, down)
	_, err := s.pg.Start(ctx)
	return err
}

// RestartClickHouse stops ClickHouse and starts it again after down.
func (s *System) RestartClickHouse(ctx context.Context, down time.Duration) error {
	if err := s.ch.Stop(ctx); err != nil {
		return err
	}
	sleep(ctx, down)
	_, err := s.ch.Start(ctx)
	return err
}

// env is the engine's environment: every port and server of the system.
func (s *System) env() []string {
	var fns []string
	for n, p := range s.Ports.Functions {
		fns = append(fns, fmt.Sprintf("%s:%d", n, p))
	}
	env := []string{
		"JOBFLOW_ROOT=" + s.Root, "JOBFLOW_DIR=" + filepath.Join(s.Dir, "engine"),
		"JOBFLOW_POSTGRES_URL=" + s.PostgresURL("jobflow"), "JOBFLOW_CLICKHOUSE_ADDR=" + s.ClickHouseAddr(),
		"JOBFLOW_DATABASES=", "KAFKA_BROKERS=", "JOBFLOW_KAFKA_PERSIST=true", "JOBFLOW_FUNCTIONS=",
		fmt.Sprintf("JOBFLOW_KAFKA_PORT=%d", s.Ports.Kafka), fmt.Sprintf("JOBFLOW_INGRESS_PORT=%d", s.Ports.Ingress),
		fmt.Sprintf("JOBFLOW_BROKER_PORT=%d", s.Ports.Broker), fmt.Sprintf("JOBFLOW_ADMIN_PORT=%d", s.Ports.Admin),
		"JOBFLOW_PORTS=" + strings.Join(fns, ","), "JOBFLOW_PROMETHEUS=false", "JOBFLOW_STATUS_INTERVAL=0",
		"JOBFLOW_COMMIT_INTERVAL=1s", "JOBFLOW_START_TIMEOUT=5m",
	}
	if s.starts > 0 {
		env = append(env, "JOBFLOW_SKIP_BUILD=true") // built by the first start
	}
	return append(os.Environ(), env...)
}

// StartEngine starts `jobflow up` and waits until every function and
// adapter is ready.
func (s *System) StartEngine(ctx context.Context, timeout time.Duration) error {
	if s.logFile == nil {
		f, err := os.OpenFile(filepath.Join(s.Dir, "engine.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("engine log: %w", err)
		}
		s.logFile = f
	}
	fmt.Fprintf(s.logFile, "\n=== chaos: engine start %d at %s\n", s.starts+1, time.Now().UTC().Format(time.RFC3339))
	cmd := exec.Command(s.Bin, "up")
	cmd.Dir = s.Root
	cmd.Env = s.env()
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	// The engine dies with the suite; its own children die with it (Pdeathsig).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	s.starts++
	s.engine, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.exited)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("engine exited during start: see %s", s.logFile.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if st, err := s.Status(ctx); err == nil && allReady(st) {
			return nil
		}
	}
	return fmt.Errorf("engine not ready after %s: see %s", timeout, s.logFile.Name())
}

func allReady(st engine.Status) bool {
	if len(st.Functions) == 0 {
		return false
	}
	for _, f := range st.Functions {
		if !f.Ready {
			return false
		}
	}
	return true
}

// Status is the engine's /status.
func (s *System) Status(ctx context.Context) (engine.Status, error) {
	var st engine.Status
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/status", s.Ports.Admin), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Children are the pids of every function instance and adapter the
// engine runs, by name.
func Children(st engine.Status) map[int]string {
	pids := map[int]string{}
	for name, f := range st.Functions {
		if f.PID > 0 {
			pids[f.PID] = name
		}
		if f.Scale != nil {
			for _, in := range f.Scale.PerInstance {
				if in.PID > 0 {
					pids[in.PID] = name
				}
			}
		}
	}
	return pids
}

// KillEngine SIGKILLs the engine and waits for it to exit.
func (s *System) KillEngine() error {
	if s.engine == nil {
		return errors.New("no engine")
	}
	if err := s.engine.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill engine: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("engine did not exit 30s after SIGKILL")
	}
}

// StopEngine stops the engine gracefully (SIGTERM), SIGKILL after a
// minute.
func (s *System) StopEngine() {
	if s.engine == nil {
		return
	}
	_ = s.engine.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		_ = s.KillEngine()
	}
}

// Close stops the engine and the servers.
func (s *System) Close() {
	s.StopEngine()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if s.pg.Path != "" {
		_ = s.pg.Stop(ctx)
	}
	if s.ch.Path != "" {
		_ = s.ch.Stop(ctx)
	}
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
}

// alive reports whether a process exists (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
