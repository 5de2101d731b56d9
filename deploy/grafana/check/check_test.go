package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dashboards is where the reviewed dashboards are kept.
const dashboards = ".."

// TestDashboardsParse: every query of every dashboard parses with
// Prometheus's parser and names jobflow's metrics only.
func TestDashboardsParse(t *testing.T) {
	qs, err := LoadDir(dashboards)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		names, err := Metrics(q.Expr)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: selects no metric", q)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "jobflow_") {
				t.Errorf("%s: %s is not one of jobflow's metrics (jobflow_*)", q, n)
			}
		}
	}
	t.Logf("%d queries parsed", len(qs))
}

// TestMetricsRefuses: the check fails on what Prometheus would refuse or
// on a selector without a metric name.
func TestMetricsRefuses(t *testing.T) {
	for _, expr := range []string{
		`rate(jobflow_function_requests_total[$__rate_interval]`,
		`sum by (function) (rate(jobflow_x{function="a"}[5m])) +`,
		`histogram_quantil(0.5, jobflow_x_bucket)`,
		`sum(rate({function="receiver"}[5m]))`,
	} {
		if names, err := Metrics(expr); err == nil {
			t.Errorf("%s: accepted (names %v)", expr, names)
		}
	}
	names, err := Metrics(`histogram_quantile(0.99, sum by (le) (rate(jobflow_a_bucket{f=~"$f"}[$__rate_interval]))) / on() group_left jobflow_b`)
	if err != nil || strings.Join(names, ",") != "jobflow_a_bucket,jobflow_b" {
		t.Errorf("names %v, err %v; want jobflow_a_bucket,jobflow_b", names, err)
	}
}

// TestKustomizationListsEveryDashboard: the cluster's ConfigMap
// (deploy/grafana/kustomization.yaml) carries every dashboard.
func TestKustomizationListsEveryDashboard(t *testing.T) {
	k, err := os.ReadFile(filepath.Join(dashboards, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dashboards, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	for _, f := range files {
		if !strings.Contains(string(k), "- "+filepath.Base(f)+"\n") {
			t.Errorf("kustomization.yaml does not list %s", filepath.Base(f))
		}
	}
}
