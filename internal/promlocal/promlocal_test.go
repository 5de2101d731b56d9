package promlocal

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobflow/jobflow/internal/testenv"
)

// A real Prometheus scrapes what the targets file names, and follows the
// file as targets come and go.
func TestPrometheusFollowsTargetsFile(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed: make deps installs it")
		}
		t.Skip("prometheus is not installed: make deps installs it")
	}
	a, b := metricsServer(t), metricsServer(t)
	cfg := Config{Bin: "prometheus", Dir: t.TempDir(), Port: testenv.FreePort(t), ScrapeInterval: time.Second, Retention: time.Hour}
	w := NewTargetsWriter(TargetsFile(cfg.Dir))
	if _, err := WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]TargetGroup{{Targets: []string{a}, Labels: map[string]string{"kind": "function", "function": "f"}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.Default()) }()
	defer func() { cancel(); <-done }()
	waitCtx, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	if err := WaitReady(waitCtx, cfg.Port); err != nil {
		t.Fatal(err)
	}
	waitTargets(t, cfg.Port, map[string]string{a: "f"})

	changed, err := w.Write([]TargetGroup{{Targets: []string{b, a}, Labels: map[string]string{"kind": "function", "function": "f"}}})
	if err != nil || !changed {
		t.Fatalf("write: changed %v, %v", changed, err)
	}
	if changed, _ := w.Write([]TargetGroup{{Targets: []string{a, b}, Labels: map[string]string{"kind": "function", "function": "f"}}}); changed {
		t.Fatal("the same targets in another order rewrote the file")
	}
	waitTargets(t, cfg.Port, map[string]string{a: "f", b: "f"})
	if _, err := w.Write([]TargetGroup{{Targets: []string{b}, Labels: map[string]string{"kind": "function", "function": "f"}}}); err != nil {
		t.Fatal(err)
	}
	waitTargets(t, cfg.Port, map[string]string{b: "f"})
}

// metricsServer serves the default registry's /metrics; it returns its
// host:port.
func metricsServer(t *testing.T) string {
	srv := httptest.NewServer(promhttp.Handler())
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// waitTargets waits until Prometheus's active targets are want (address
// to function label), each scraped with health "up".
func waitTargets(t *testing.T, port int, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		got, err := activeTargets(port)
		if err == nil && equal(got, want) {
			return
		}
		last = fmt.Sprint(got, err)
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("prometheus targets: %s, want %v up", last, want)
}

func activeTargets(port int) (map[string]string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/targets?state=active", port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
				Health string            `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, tg := range body.Data.ActiveTargets {
		if tg.Health != "up" {
			got[tg.Labels["instance"]] = "health " + tg.Health
			continue
		}
		got[tg.Labels["instance"]] = tg.Labels["function"]
	}
	return got, nil
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
