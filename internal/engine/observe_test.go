package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/internal/tracestore"
)

// One job posted is one trace, with a span at every hop from the HTTP
// request to the database writes; the local Prometheus scrapes the engine
// and the instances that served it; the consumer lag is exported.
func TestOneJobIsOneTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the whole engine")
	}
	cfg := testConfig(t)
	cfg.Adapters = false
	cfg.Traces, cfg.TracesKept = true, 100
	cfg.LagInterval = time.Second
	_, promErr := exec.LookPath("prometheus")
	if promErr == nil {
		cfg.Prometheus, cfg.PrometheusBin, cfg.PrometheusPort, cfg.ScrapeInterval = true, "prometheus", testenv.FreePort(t), time.Second
	}
	c := runCluster(t, cfg)
	admin := fmt.Sprintf("http://127.0.0.1:%d", cfg.AdminPort)

	id, code := restJob(t, c.receiver, `{"sleep":5,"data_size":64}`)
	if code != http.StatusOK {
		t.Fatalf("create job: %d", code)
	}
	want := []string{"receiver", "emit K_SINK", "KafkaSink receiver-sink", "deliver processor-source", "processor",
		"KafkaSink processor-sink", "deliver converter-source", "converter", "KafkaSink postgres-sink", "KafkaSink clickhouse-sink",
		"pgsink write", "chsink write"}
	var last string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		traces := getTraces(t, admin+"/traces?subject="+id.String())
		if len(traces) > 1 {
			t.Fatalf("job %s is in %d traces, want one", id, len(traces))
		}
		if len(traces) == 1 {
			names := map[string]bool{}
			for _, h := range traces[0].Hops {
				names[h.Name] = true
			}
			var missing []string
			for _, w := range want {
				if !names[w] {
					missing = append(missing, w)
				}
			}
			if len(missing) == 0 {
				checkTrace(t, admin, traces[0])
				break
			}
			last = fmt.Sprintf("missing %v in %d spans", missing, len(traces[0].Hops))
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace of job %s: %s", id, last)
		}
		time.Sleep(500 * time.Millisecond)
	}

	metrics := get(t, admin+"/metrics")
	if !strings.Contains(metrics, `jobflow_consumer_lag{kind="source",source="processor-source"}`) {
		t.Errorf("no consumer lag of processor-source on /metrics")
	}
	if promErr == nil {
		waitScraped(t, cfg.PrometheusPort, []string{"engine", "receiver", "pgsink"})
	}
}

// checkTrace checks the trace served by id: one root, the receiver's
// request, and every other span under it.
func checkTrace(t *testing.T, admin string, tr tracestore.Trace) {
	t.Helper()
	var byID tracestore.Trace
	if err := json.Unmarshal([]byte(get(t, admin+"/traces/"+tr.TraceID)), &byID); err != nil {
		t.Fatal(err)
	}
	roots := 0
	for _, h := range byID.Hops {
		if h.Depth == 0 {
			roots++
			if h.Name != "receiver" || h.Service != "receiver" {
				t.Errorf("root span %s of %s, want the receiver's request", h.Name, h.Service)
			}
		}
		if h.DurationMs < 0 || h.OffsetMs < 0 {
			t.Errorf("span %s: offset %v ms, duration %v ms", h.Name, h.OffsetMs, h.DurationMs)
		}
	}
	if roots != 1 {
		t.Errorf("%d roots in trace %s, want 1", roots, tr.TraceID)
	}
}

func getTraces(t *testing.T, url string) []tracestore.Trace {
	t.Helper()
	var out []tracestore.Trace
	if err := json.Unmarshal([]byte(get(t, url)), &out); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return out
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitScraped waits until the local Prometheus has scraped the engine and
// an instance of each function named (the up series with their labels).
func waitScraped(t *testing.T, port int, want []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var got map[string]bool
	for time.Now().Before(deadline) {
		got = map[string]bool{}
		var body struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=max_over_time(up%%5B10m%%5D)==1", port))
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
		}
		for _, r := range body.Data.Result {
			if r.Metric["kind"] == "engine" {
				got["engine"] = true
			}
			got[r.Metric["function"]] = true
		}
		all := true
		for _, w := range want {
			all = all && got[w]
		}
		if all {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("prometheus scraped %v, want %v", got, want)
}
