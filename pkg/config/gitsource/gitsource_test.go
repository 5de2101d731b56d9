package gitsource

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/config/change"
)

// write puts files (path → content) under dir.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func gitCmd(t *testing.T, dir string, args ...string) string {
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

func needGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
}

const maxSleepSchema = `{"type":"string","pattern":"^[0-9]+(ms|s|m)$"}`

func TestSeededRepositoryIsReadKeyByKeyAndInvalidKeysAreRefusedAlone(t *testing.T) {
	seed := t.TempDir()
	write(t, seed, map[string]string{
		"README.md":                            "not a key",
		"jobs/processor/max-sleep.json":        `"30s"`,
		"jobs/processor/max-sleep.schema.json": maxSleepSchema,
		"jobs/receiver/limits.yaml":            "max_sleep: 10s\nmax_data_size: 1048576\n",
		"broken.json":                          `{"a": `,
		"broken-yaml.yml":                      "a: [1, 2\n",
		"twice.json":                           `1`,
		"twice.yaml":                           `1`,
	})
	bare := filepath.Join(t.TempDir(), "config.git")
	created, err := Seed(bare, seed, "main")
	if err != nil || !created {
		t.Fatalf("seed: %v %v", created, err)
	}
	if again, err := Seed(bare, seed, "main"); err != nil || again {
		t.Fatalf("a second seed must leave the repository: %v %v", again, err)
	}
	repo := NewRepo(bare, "main", "")
	c, err := repo.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := c.Tree()
	files, err := ReadTree(tree)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(files.Values["jobs/processor/max-sleep"]); got != `"30s"` {
		t.Errorf("max-sleep = %s", got)
	}
	if got := string(files.Values["jobs/receiver/limits"]); got != `{"max_data_size":1048576,"max_sleep":"10s"}` {
		t.Errorf("YAML limits = %s", got)
	}
	for _, k := range []string{"broken", "broken-yaml", "twice"} {
		if files.Refused[k] == "" {
			t.Errorf("%s not refused: %v", k, files.Values[k])
		}
	}
	if len(files.Values) != 2 {
		t.Errorf("values %v", files.Values)
	}
	t.Logf("refused: %v", files.Refused)

	// A clone, a change that fails its schema and one that is fine: the
	// good one applies, the bad one keeps its published value.
	needGit(t)
	work := filepath.Join(t.TempDir(), "work")
	gitCmd(t, "", "clone", "-q", bare, work)
	write(t, work, map[string]string{"jobs/processor/max-sleep.json": `"soon"`, "jobs/receiver/limits.yaml": "max_sleep: 5s\n"})
	if err := os.Remove(filepath.Join(work, "broken.json")); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, work, "commit", "-qam", "change")
	gitCmd(t, work, "push", "-q", "origin", "main")
	c2, err := repo.Head(context.Background())
	if err != nil || c2.Hash == c.Hash {
		t.Fatalf("head after push %v (%v)", c2, err)
	}
	tree2, _ := c2.Tree()
	files2, _ := ReadTree(tree2)
	if !strings.Contains(files2.Refused["jobs/processor/max-sleep"], "fails its schema") {
		t.Fatalf("schema refusal: %q", files2.Refused["jobs/processor/max-sleep"])
	}
	published := map[string]change.Change{}
	for k, v := range files.Values {
		published[k] = change.Change{Key: k, Value: v, Revision: c.Hash.String()}
	}
	published["gone"] = change.Change{Key: "gone", Value: json.RawMessage(`1`), Revision: c.Hash.String()}
	diff := Diff(files2, c2.Hash.String(), published)
	if len(diff) != 2 || diff[0].Key != "gone" || !diff[0].Deleted || diff[1].Key != "jobs/receiver/limits" ||
		string(diff[1].Value) != `{"max_sleep":"5s"}` || diff[1].PreviousRevision != c.Hash.String() {
		t.Fatalf("diff %+v", diff)
	}
}

func TestPushThroughTheHookReachesTheWebhook(t *testing.T) {
	needGit(t)
	got := make(chan Push, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := VerifyWebhook("s3cret", r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		p, ok, err := ParsePush(r.Header, body, "main")
		if err != nil || !ok {
			http.Error(w, "bad push", http.StatusBadRequest)
			return
		}
		got <- p
		_, _ = w.Write([]byte(`{"changed":["k"]}`))
	}))
	defer srv.Close()
	seed := t.TempDir()
	write(t, seed, map[string]string{"k.json": "1"})
	bare := filepath.Join(t.TempDir(), "config.git")
	if _, err := Seed(bare, seed, "main"); err != nil {
		t.Fatal(err)
	}
	if err := InstallHook(bare, srv.URL+"/webhook", "s3cret"); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	gitCmd(t, "", "clone", "-q", bare, work)
	write(t, work, map[string]string{"k.json": "2"})
	gitCmd(t, work, "commit", "-qam", "two")
	out := gitCmd(t, work, "push", "origin", "main")
	select {
	case p := <-got:
		if p.Ref != "refs/heads/main" || len(p.After) != 40 {
			t.Fatalf("push %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hook did not call the webhook")
	}
	if !strings.Contains(out, `"changed":["k"]`) {
		t.Errorf("the pusher should see the webhook's answer; git push said:\n%s", out)
	}
}

func TestWebhookSignatures(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main","after":"abc"}`)
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write(body)
	sig := hex.EncodeToString(mac.Sum(nil))
	cases := []struct {
		name   string
		h      http.Header
		secret string
		ok     bool
	}{
		{"no secret: anything", http.Header{}, "", true},
		{"github", http.Header{"X-Hub-Signature-256": {"sha256=" + sig}}, "k", true},
		{"gitea", http.Header{"X-Gitea-Signature": {sig}}, "k", true},
		{"gitlab", http.Header{"X-Gitlab-Token": {"k"}}, "k", true},
		{"missing", http.Header{}, "k", false},
		{"wrong hmac", http.Header{"X-Hub-Signature-256": {"sha256=" + strings.Repeat("0", 64)}}, "k", false},
		{"wrong token", http.Header{"X-Gitlab-Token": {"x"}}, "k", false},
	}
	for _, c := range cases {
		if err := VerifyWebhook(c.secret, c.h, body); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, ok, err := ParsePush(http.Header{"X-Github-Event": {"ping"}}, []byte(`{}`), "main"); ok || err != nil {
		t.Errorf("a ping is not a push: %v %v", ok, err)
	}
	if _, ok, _ := ParsePush(http.Header{}, []byte(`{"ref":"refs/heads/dev","after":"x"}`), "main"); ok {
		t.Error("another branch is not the configuration")
	}
	if _, _, err := ParsePush(http.Header{}, []byte(`{"ref":`), "main"); err == nil {
		t.Error("invalid JSON accepted")
	}
}

// The repository's seed folder (config/) is what `jobflow up` starts
// from: every key in it has a schema and passes it.
func TestTheSeedFolderPassesItsSchemas(t *testing.T) {
	seed := filepath.Join(testenv.RootDir(t), "config")
	bare := filepath.Join(t.TempDir(), "config.git")
	if _, err := Seed(bare, seed, "main"); err != nil {
		t.Fatal(err)
	}
	c, err := NewRepo(bare, "main", "").Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := c.Tree()
	files, err := ReadTree(tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(files.Refused) > 0 || len(files.Values) == 0 {
		t.Fatalf("refused %v, %d values", files.Refused, len(files.Values))
	}
	for key := range files.Values {
		if _, err := os.Stat(filepath.Join(seed, key+SchemaSuffix)); err != nil {
			t.Errorf("%s has no schema: %v", key, err)
		}
	}
	t.Logf("%d keys", len(files.Values))
}
