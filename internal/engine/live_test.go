package engine_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/testenv"
)

// A push to the configuration repository changes the running receiver's
// limit without a restart (issue #19): the engine runs the receiver and
// the live configuration's two functions; the receiver's func.yaml
// JOBFLOW_CONFIG_URL reaches config-subscribe through its activator, and
// the repository is the local one, seeded from config/ with its hook.
func TestLiveReceiverLimitFollowsAPush(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the engine")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	cfg := testConfig(t)
	cfg.Adapters = false
	cfg.Functions = []string{"receiver", "config-source", "config-subscribe"}
	cfg.Ports["config-source"], cfg.Ports["config-subscribe"] = testenv.FreePort(t), testenv.FreePort(t)
	cfg.BrokerPort = testenv.FreePort(t)
	c := runCluster(t, cfg)

	// config-source seeds JOBFLOW_DIR/config.git at its first sync.
	resp, err := http.Post("http://127.0.0.1:"+itoa(cfg.Ports["config-source"])+"/sync", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sync: %s", resp.Status)
	}
	if _, code := restJob(t, c.receiver, `{"sleep":1500}`); code != http.StatusOK {
		t.Fatalf("1.5 s under the seed's 10s: %d", code)
	}
	work := filepath.Join(t.TempDir(), "config")
	git(t, "", "clone", "-q", filepath.Join(cfg.StateDir, "config.git"), work)
	push := func(value string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(work, "jobs/receiver/max-sleep.json"), []byte(value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, work, "commit", "-qam", "max-sleep "+value)
		return git(t, work, "push", "origin", "HEAD")
	}
	if out := push(`"1s"`); !strings.Contains(out, `"changed":["jobs/receiver/max-sleep"]`) {
		t.Fatalf("push: the hook did not report the change:\n%s", out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, code := restJob(t, c.receiver, `{"sleep":1500}`)
		if code == http.StatusBadRequest {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("1.5 s still answered %d a minute after max-sleep became 1s", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := push(`"soon"`); !strings.Contains(out, "refused") {
		t.Fatalf("push of a value failing its schema was not refused:\n%s", out)
	}
	time.Sleep(time.Second)
	if _, code := restJob(t, c.receiver, `{"sleep":900}`); code != http.StatusOK {
		t.Errorf("900 ms under 1s: %d", code)
	}
	if _, code := restJob(t, c.receiver, `{"sleep":1500}`); code != http.StatusBadRequest {
		t.Errorf("1.5 s after a refused push: %d, want 400 (1s kept)", code)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}
