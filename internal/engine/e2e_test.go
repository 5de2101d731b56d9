package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/receiver"
)

// cluster is an engine running the repository's manifests and functions
// against fresh databases on the test servers and its own embedded broker.
type cluster struct {
	eng                   *engine.Engine
	receiver, query, dlgs string
	pg                    *pgxpool.Pool
	ch                    clickhouse.Conn
	chDB                  string
	stop                  func() error
}

// testConfig is an engine config on fresh databases, free ports and a
// temporary state directory.
func testConfig(t *testing.T) engine.Config {
	t.Helper()
	pgURL, dialogsURL, countersURL := testenv.PostgresDB(t), testenv.PostgresDB(t), testenv.PostgresDB(t)
	chAddr, chDB := testenv.ClickHouseDB(t)
	slot := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	// Functions inherit the engine's environment.
	t.Setenv("JOBFLOW_CLICKHOUSE_DB", chDB)
	t.Setenv("CDC_SLOT_NAME", slot)
	t.Setenv("CDC_PUBLICATION_NAME", slot)
	return engine.Config{
		Root: testenv.RootDir(t), StateDir: t.TempDir(), Namespace: "jobflow",
		KafkaPort: testenv.FreePort(t), PostgresURL: pgURL, Databases: map[string]string{"dialogs": dialogsURL, "counters": countersURL},
		ClickHouseAddr: chAddr, Adapters: true,
		Ports:       map[string]int{"receiver": testenv.FreePort(t), "query": testenv.FreePort(t), "dialogs": testenv.FreePort(t)},
		IngressPort: testenv.FreePort(t), AdminPort: testenv.FreePort(t),
		CommitInterval: time.Second, StartTimeout: 5 * time.Minute,
	}
}

func startCluster(t *testing.T) *cluster { return runCluster(t, testConfig(t)) }

// runCluster runs an engine with cfg until the test ends or stop is called.
func runCluster(t *testing.T, cfg engine.Config) *cluster {
	t.Helper()
	chDB := os.Getenv("JOBFLOW_CLICKHOUSE_DB")
	out := &testenv.SyncBuffer{}
	eng := engine.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), out)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	select {
	case <-eng.Ready():
	case err := <-done:
		t.Fatalf("engine stopped before it was ready: %v\n%s", err, out.String())
	case <-time.After(6 * time.Minute):
		t.Fatalf("engine not ready after 6 minutes\n%s", out.String())
	}
	pg, err := pgxpool.New(context.Background(), cfg.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := clickhouse.Open(&clickhouse.Options{Addr: []string{cfg.ClickHouseAddr}, Auth: clickhouse.Auth{Database: chDB}})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{eng: eng, pg: pg, ch: ch, chDB: chDB,
		receiver: fmt.Sprintf("http://127.0.0.1:%d", cfg.Ports["receiver"]),
		query:    fmt.Sprintf("http://127.0.0.1:%d", cfg.Ports["query"]),
		dlgs:     fmt.Sprintf("http://127.0.0.1:%d", cfg.Ports["dialogs"])}
	stopped := false
	c.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(90 * time.Second):
			return fmt.Errorf("engine did not stop within 90s")
		}
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		pg.Close()
		_ = ch.Close()
		if t.Failed() {
			t.Logf("engine output:\n%s", out.String())
		}
	})
	return c
}

func doJSON(t *testing.T, req *http.Request, into any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("%s %s: %v: %s", req.Method, req.URL, err, body)
		}
	}
	return resp.StatusCode
}

// restJob sends POST /create/job and returns the job id.
func restJob(t *testing.T, base string, body string) (uuid.UUID, int) {
	req, _ := http.NewRequest(http.MethodPost, base+"/create/job", strings.NewReader(body))
	var ans struct {
		ID       uuid.UUID `json:"id"`
		Sleep    int64     `json:"sleep"`
		DataSize int64     `json:"data_size"`
	}
	code := doJSON(t, req, &ans)
	return ans.ID, code
}

// ceJob sends a dev.jobflow.job.requested CloudEvent in binary or structured mode.
func ceJob(t *testing.T, base, id string, structured bool) (uuid.UUID, int) {
	var req *http.Request
	if structured {
		body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/e2e","type":"dev.jobflow.job.requested","datacontenttype":"application/json","data":{"sleep":50,"data_size":64}}`, id)
		req, _ = http.NewRequest(http.MethodPost, base+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
	} else {
		req, _ = http.NewRequest(http.MethodPost, base+"/", strings.NewReader(`{"sleep":50,"data_size":64}`))
		req.Header.Set("ce-specversion", "1.0")
		req.Header.Set("ce-id", id)
		req.Header.Set("ce-source", "/e2e")
		req.Header.Set("ce-type", "dev.jobflow.job.requested")
		req.Header.Set("Content-Type", "application/json")
	}
	var created struct {
		ID uuid.UUID `json:"id"`
	}
	code := doJSON(t, req, &created)
	return created.ID, code
}

func TestPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the whole engine")
	}
	c := startCluster(t)

	// Bad input: a 4xx with a reason, nothing emitted.
	for name, tc := range map[string]struct {
		ct, body string
		want     int
	}{
		"negative sleep": {"application/json", `{"sleep":-1}`, 400},
		"huge sleep":     {"application/json", `{"sleep":999999999}`, 400},
		"unknown field":  {"application/json", `{"slep":1}`, 400},
		"invalid json":   {"application/json", `{"sleep":`, 400},
		"oversized":      {"application/json", `{"sleep":1,"x":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
	} {
		req, _ := http.NewRequest(http.MethodPost, c.receiver+"/create/job", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		if code := doJSON(t, req, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	notCE, _ := http.NewRequest(http.MethodPost, c.receiver+"/", strings.NewReader(`{}`))
	if code := doJSON(t, notCE, nil); code != 415 {
		t.Errorf("not a CloudEvent: %d, want 415", code)
	}
	wrongType, _ := http.NewRequest(http.MethodPost, c.receiver+"/", strings.NewReader(`{}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/e2e", "ce-type": "dev.other"} {
		wrongType.Header.Set(k, v)
	}
	if code := doJSON(t, wrongType, nil); code != 400 {
		t.Errorf("wrong event type: %d, want 400", code)
	}

	// 1,000 jobs: 500 REST, 500 CloudEvents (binary and structured), from 20 clients.
	const n = 1000
	ids := make([]uuid.UUID, n)
	var wg sync.WaitGroup
	var failures sync.Map
	work := make(chan int)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				var id uuid.UUID
				var code int
				if i%2 == 0 {
					id, code = restJob(t, c.receiver, fmt.Sprintf(`{"sleep":%d,"data_size":%d}`, i%100, 100+i))
				} else {
					id, code = ceJob(t, c.receiver, fmt.Sprintf("req-%d", i), i%4 == 1)
				}
				if code != 200 || id == uuid.Nil {
					failures.Store(i, code)
				}
				ids[i] = id
			}
		}()
	}
	start := time.Now()
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("job %v: status %v", k, v); return true })
	if t.Failed() {
		t.FailNow()
	}
	// A CloudEvent resent with the same source and id is the same job.
	if again, code := ceJob(t, c.receiver, "req-1", false); code != 200 || again != ids[1] {
		t.Fatalf("resent CloudEvent: job %s (%d), want %s", again, code, ids[1])
	}
	t.Logf("1000 jobs accepted in %s", time.Since(start).Round(time.Millisecond))

	// Every job reaches PostgreSQL with its final status.
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	var finished, total int
	for time.Now().Before(deadline) {
		_ = c.pg.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'finish'), count(*) FROM jobs`).Scan(&finished, &total)
		if finished == n {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if finished != n || total != n {
		t.Fatalf("postgres: %d finished of %d rows, want %d of %d", finished, total, n, n)
	}
	t.Logf("1000 jobs finished in PostgreSQL %s after the first was sent", time.Since(start).Round(time.Millisecond))
	var missing int
	if err := c.pg.QueryRow(ctx, `SELECT count(*) FROM unnest($1::uuid[]) AS want(id) LEFT JOIN jobs USING (id) WHERE jobs.status IS DISTINCT FROM 'finish' OR finish_date IS NULL OR checksum IS NULL`, ids).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("%d of the sent jobs are not finished in postgres", missing)
	}

	// Exactly two rows per job in ClickHouse: create and finish.
	var chJobs, chBad uint64
	for time.Now().Before(deadline) {
		err := c.ch.QueryRow(ctx, `SELECT count(), countIf(n != 2 OR events != 'create,finish') FROM (
			SELECT job_id, count() AS n, arrayStringConcat(arraySort(groupArray(event)), ',') AS events FROM job_events FINAL GROUP BY job_id)`).Scan(&chJobs, &chBad)
		if err != nil {
			t.Fatal(err)
		}
		if chJobs == n && chBad == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if chJobs != n || chBad != 0 {
		t.Fatalf("clickhouse: %d jobs, %d without exactly create+finish; want %d and 0", chJobs, chBad, n)
	}
	var rawRows uint64
	_ = c.ch.QueryRow(ctx, `SELECT count() FROM job_events`).Scan(&rawRows)
	t.Logf("clickhouse: %d rows before dedupe, %d jobs with exactly 2 rows", rawRows, chJobs)

	// Every job through the query function.
	for i, id := range ids {
		var info struct {
			ID         string     `json:"id"`
			Status     string     `json:"status"`
			CreateDate *time.Time `json:"create_date"`
			FinishDate *time.Time `json:"finish_date"`
		}
		req, _ := http.NewRequest(http.MethodGet, c.query+"/info/"+id.String(), nil)
		if code := doJSON(t, req, &info); code != 200 || info.ID != id.String() || info.Status != "finish" ||
			info.CreateDate == nil || info.FinishDate == nil || info.FinishDate.Before(*info.CreateDate) {
			t.Fatalf("job %d /info: %d %+v", i, code, info)
		}
	}
	var unknown struct{ ID, Status string }
	req, _ := http.NewRequest(http.MethodGet, c.query+"/info/"+uuid.NewString(), nil)
	if code := doJSON(t, req, &unknown); code != 200 || unknown.Status != "unknown" {
		t.Fatalf("unknown id: %d %+v", code, unknown)
	}
	req, _ = http.NewRequest(http.MethodGet, c.query+"/info/not-a-uuid", nil)
	if code := doJSON(t, req, nil); code != 400 {
		t.Fatalf("malformed id: %d, want 400", code)
	}
	var stats struct{ Created, Finished uint64 }
	req, _ = http.NewRequest(http.MethodGet, c.query+"/stats", nil)
	if code := doJSON(t, req, &stats); code != 200 || stats.Created != n || stats.Finished != n {
		t.Fatalf("stats: %d %+v", code, stats)
	}

	brokerJobs(t, c)

	// Nothing was dead-lettered or dropped on the way.
	for name, s := range c.eng.Status().Sources {
		if s.DeadLettered != 0 || s.Dropped != 0 {
			t.Errorf("source %s: %d dead-lettered, %d dropped", name, s.DeadLettered, s.Dropped)
		}
	}
	if err := c.stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
}

// brokerJobs sends job requests as CloudEvents to the repository's Broker:
// its Trigger job-requests (exact type dev.jobflow.job.requested) delivers
// them to the receiver, and each job finishes in PostgreSQL; an event of
// another type reaches no function and is counted as filtered.
func brokerJobs(t *testing.T, c *cluster) {
	t.Helper()
	var broker string
	for _, b := range c.eng.Plan().Brokers {
		if b.Name == "jobflow" {
			broker = b.URL
		}
	}
	if broker == "" {
		t.Fatalf("no jobflow Broker in the plan: %+v", c.eng.Plan().Brokers)
	}
	post := func(typ, id, data string) {
		req, _ := http.NewRequest(http.MethodPost, broker, strings.NewReader(data))
		req.Header.Set("ce-specversion", "1.0")
		req.Header.Set("ce-type", typ)
		req.Header.Set("ce-source", "/e2e/broker")
		req.Header.Set("ce-id", id)
		req.Header.Set("content-type", "application/json")
		if code := doJSON(t, req, nil); code != http.StatusAccepted {
			t.Fatalf("broker ingress answered %d to %s %s, want 202", code, typ, id)
		}
	}
	var ids []uuid.UUID
	for i := range 3 {
		id := fmt.Sprintf("broker-%d", i)
		post(job.TypeRequested, id, `{"sleep":1,"data_size":16}`)
		e := event.New()
		e.SetSource("/e2e/broker")
		e.SetID(id)
		ids = append(ids, receiver.IDForEvent(e))
	}
	post("dev.jobflow.other", "other-1", `{}`)
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	finished := 0
	for time.Now().Before(deadline) {
		_ = c.pg.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE id = ANY($1) AND status = 'finish'`, ids).Scan(&finished)
		if finished == len(ids) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if finished != len(ids) {
		t.Fatalf("%d of %d jobs requested through the Broker finished", finished, len(ids))
	}
	tr, ok := c.eng.Status().Triggers["job-requests"]
	if !ok || tr.Delivered < int64(len(ids)) || tr.Filtered < 1 {
		t.Fatalf("trigger job-requests: %+v (ok %v), want %d delivered and the other type filtered", tr, ok, len(ids))
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
