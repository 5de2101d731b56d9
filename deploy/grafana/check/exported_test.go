package check

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDashboardsNameExportedMetrics builds the jobflow command, runs
// `jobflow up` on free ports (its own PostgreSQL, ClickHouse and Kafka
// broker, every function of functions/), sends each domain some traffic
// and scrapes the engine and every instance it lists for Prometheus, until
// every metric a dashboard names has been seen on some /metrics.
func TestDashboardsNameExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole engine")
	}
	qs, err := LoadDir(dashboards)
	if err != nil {
		t.Fatal(err)
	}
	wanted := map[string][]Query{}
	for _, q := range qs {
		names, err := Metrics(q.Expr)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, n := range names {
			wanted[n] = append(wanted[n], q)
		}
	}

	up := startJobflow(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up.traffic(ctx, t)

	var missing []string
	deadline := time.Now().Add(4 * time.Minute)
	for {
		seen := up.scrapeAll(t)
		missing = missing[:0]
		for n := range wanted {
			if !seen[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		// Batches (jobflow_function_batch_events) form only when records
		// wait: a burst of concurrent jobs makes some.
		up.jobBurst(t, 30)
		time.Sleep(3 * time.Second)
	}
	sort.Strings(missing)
	for _, n := range missing {
		for _, q := range wanted[n] {
			t.Errorf("%s is exported by no process of the running engine; named by %s", n, q)
		}
	}
	t.Logf("%d metrics named by %d queries, all seen on /metrics: %v", len(wanted), len(qs), len(missing) == 0)
}

// jobflow is one `jobflow up` child process.
type jobflow struct {
	dir   string         // its JOBFLOW_DIR
	admin int            // its admin port
	ports map[string]int // function name -> port
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startJobflow builds and starts `jobflow up`, waits until it says it is
// up, and stops it (SIGINT, as Ctrl-C) when the test ends.
func startJobflow(t *testing.T) *jobflow {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "jobflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/jobflow")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/jobflow: %v\n%s", err, out)
	}
	// Under the repository's .jobflow (git-ignored) rather than t.TempDir():
	// the PostgreSQL server runs as the postgres user, who must reach it.
	dir := filepath.Join(root, ".jobflow", "grafana-check")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	j := &jobflow{dir: dir, admin: freePort(t), ports: map[string]int{}}
	var fixed []string
	for _, e := range entries {
		if e.IsDir() {
			j.ports[e.Name()] = freePort(t)
			fixed = append(fixed, fmt.Sprintf("%s:%d", e.Name(), j.ports[e.Name()]))
		}
	}
	cmd := exec.Command(bin, "up")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"JOBFLOW_ROOT="+root, "JOBFLOW_DIR="+dir,
		"KAFKA_BROKERS=", "JOBFLOW_POSTGRES_URL=", "JOBFLOW_CLICKHOUSE_ADDR=", "JOBFLOW_DATABASES=", "JOBFLOW_FUNCTIONS=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=", "JOBFLOW_PROMETHEUS=false", "JOBFLOW_KAFKA_PERSIST=false",
		fmt.Sprintf("JOBFLOW_KAFKA_PORT=%d", freePort(t)),
		fmt.Sprintf("JOBFLOW_POSTGRES_PORT=%d", freePort(t)),
		fmt.Sprintf("JOBFLOW_CLICKHOUSE_TCP_PORT=%d", freePort(t)),
		fmt.Sprintf("JOBFLOW_CLICKHOUSE_HTTP_PORT=%d", freePort(t)),
		fmt.Sprintf("JOBFLOW_INGRESS_PORT=%d", freePort(t)),
		fmt.Sprintf("JOBFLOW_BROKER_PORT=%d", freePort(t)),
		fmt.Sprintf("JOBFLOW_ADMIN_PORT=%d", j.admin),
		"JOBFLOW_PORTS="+strings.Join(fixed, ","),
		"JOBFLOW_STATUS_INTERVAL=0", "JOBFLOW_LAG_INTERVAL=1s", "JOBFLOW_COMMIT_INTERVAL=1s",
		"JOBFLOW_SCALE_TO_ZERO_GRACE=10m", "JOBFLOW_START_TIMEOUT=5m",
	)
	// If this test process dies (a -timeout panic), the engine gets Ctrl-C
	// and stops its servers and functions rather than outliving it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("jobflow up did not stop within 2 minutes of SIGINT")
		}
		if t.Failed() {
			t.Logf("jobflow up output:\n%s", out.String())
		}
		_ = os.RemoveAll(dir)
	})
	deadline := time.After(10 * time.Minute)
	for !strings.Contains(out.String(), "jobflow is up.") {
		select {
		case err := <-exited:
			t.Fatalf("jobflow up stopped before it was up: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("jobflow up not up after 10 minutes\n%s", out.String())
		case <-time.After(time.Second):
		}
	}
	return j
}

func (j *jobflow) url(function, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", j.ports[function], path)
}

// post sends a JSON body and returns the answer's body; a non-2xx answer
// fails the test.
func (j *jobflow) post(t *testing.T, url, body string, header ...string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, b)
	}
	return b
}

// jobBurst posts n jobs at once.
func (j *jobflow) jobBurst(t *testing.T, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.Post(j.url("receiver", "/create/job"), "application/json", strings.NewReader(`{"sleep":1,"data_size":16}`)); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

// traffic gives every domain something to count: jobs, a dialogs user
// (CDC, counter), a registered user's order, the live configuration's
// sync and an open subscription (kept until ctx ends).
func (j *jobflow) traffic(ctx context.Context, t *testing.T) {
	for i := 0; i < 5; i++ {
		j.post(t, j.url("receiver", "/create/job"), `{"sleep":1,"data_size":16}`)
	}
	j.post(t, j.url("dialogs", "/users"), `{"name":"ann"}`)
	j.post(t, j.url("users", "/users"), `{"username":"ann","password":"ann-secret-1","first_name":"Ann","last_name":"Lee","email":"ann@example.com"}`)
	var login struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(j.post(t, j.url("users", "/login"), `{"username":"ann","password":"ann-secret-1"}`), &login); err != nil || login.Token == "" {
		t.Fatalf("login: token %q, %v", login.Token, err)
	}
	j.post(t, j.url("orders", "/orders"), `{"product_id":1,"number":2,"unit_price_cents":1250}`,
		"Authorization", "Bearer "+login.Token, "Idempotency-Key", "grafana-check-1")
	j.post(t, j.url("config-source", "/sync"), ``)
	// GitHub's first delivery to a new hook: a ping, counted as ignored (or
	// unauthorized where a secret is set); either answer is fine here.
	if req, err := http.NewRequest(http.MethodPost, j.url("config-source", "/webhook"), strings.NewReader(`{"zen":"hi"}`)); err == nil {
		req.Header.Set("X-GitHub-Event", "ping")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url("config-subscribe", "/subscribe?keys=jobs/*"), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
}

// scrapeAll reads the engine's Prometheus targets file and returns the
// sample names exported by every target it lists (the engine, each ready
// instance, each adapter).
func (j *jobflow) scrapeAll(t *testing.T) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	b, err := os.ReadFile(filepath.Join(j.dir, "prometheus", "targets", "jobflow.json"))
	if err != nil {
		t.Logf("targets: %v", err)
		return seen
	}
	var groups []struct {
		Targets []string `json:"targets"`
	}
	if err := json.Unmarshal(b, &groups); err != nil {
		t.Fatalf("targets file: %v", err)
	}
	for _, g := range groups {
		for _, target := range g.Targets {
			resp, err := http.Get("http://" + target + "/metrics")
			if err != nil {
				continue // an instance scaled away meanwhile
			}
			text, _ := io.ReadAll(bufio.NewReader(resp.Body))
			resp.Body.Close()
			for n := range Exported(string(text)) {
				seen[n] = true
			}
		}
	}
	return seen
}

// lockedBuffer is the child's output, written and read concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
