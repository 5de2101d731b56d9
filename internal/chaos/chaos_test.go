package chaos_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/chaos"
	"github.com/jobflow/jobflow/internal/testenv"
)

// TestChaosCI is the chaos suite at its CI size (make test): the jobs
// pipeline and the counters under steady load while every fault kind is
// injected at least once; nothing accepted may be lost or doubled, every
// fault must be recovered from, and `jobflow verify all` must find no
// drift. It starts its own PostgreSQL and ClickHouse (it restarts them),
// so it needs their binaries, not the shared test servers.
func TestChaosCI(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: runs the whole system for minutes")
	}
	for _, bin := range []string{"/usr/lib/postgresql/15/bin/initdb", "/usr/sbin/clickhouse-server"} {
		if _, err := os.Stat(bin); err != nil {
			msg := bin + " is missing: run make deps"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	root := testenv.RootDir(t)
	dir, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "jobflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/jobflow")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build jobflow: %v\n%s", err, out)
	}
	cfg, err := chaos.Sizes("ci")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Root, cfg.Dir, cfg.Bin, cfg.Kinds, cfg.Seed = root, dir, bin, chaos.Kinds, uint64(time.Now().UnixNano())
	if cfg.Ports, err = chaos.PortsFromEnv(); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	cfg.Out = &progress
	t.Logf("seed %d, state under %s", cfg.Seed, dir)
	res, err := chaos.Run(context.Background(), cfg)
	var table bytes.Buffer
	if res != nil {
		res.Report(&table)
	}
	t.Logf("progress:\n%s\n%s", progress.String(), table.String())
	if err != nil {
		t.Fatalf("chaos run: %v (engine log: %s/engine.log)", err, dir)
	}
	injected := map[string]bool{}
	for _, f := range res.Faults {
		injected[f.Kind] = true
	}
	for _, k := range chaos.Kinds {
		if !injected[k] {
			t.Errorf("fault %s was never injected", k)
		}
	}
	if res.Jobs.Accepted == 0 || res.Counters.Posts == 0 {
		t.Errorf("no load: %d jobs, %d messages accepted", res.Jobs.Accepted, res.Counters.Posts)
	}
	if !res.OK() {
		t.Errorf("chaos found problems (engine log: %s/engine.log):\n%s", dir, table.String())
	}
	if !t.Failed() {
		_ = os.RemoveAll(dir)
	} else if !strings.Contains(table.String(), "FAIL") {
		t.Log("state kept under " + dir)
	}
}
