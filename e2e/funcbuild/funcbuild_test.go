package funcbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobflow/jobflow/e2e/internal/repo"
)

// Environment:
//
//	JOBFLOW_FUNC            the func CLI (make func-cli builds it); required when CI=true
//	JOBFLOW_FUNC_WORK       work folder (default <repo>/.jobflow/knative/func)
//	JOBFLOW_FUNC_FUNCTIONS  comma-separated subset of functions to build (default all)
func builder(t *testing.T) *Builder {
	t.Helper()
	bin := os.Getenv("JOBFLOW_FUNC")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("JOBFLOW_FUNC is not set: run through `make knative-check`, which builds the func CLI")
		}
		t.Skip("JOBFLOW_FUNC is not set: `make knative-check` builds the func CLI and runs this test")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("JOBFLOW_FUNC: %v", err)
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	work := os.Getenv("JOBFLOW_FUNC_WORK")
	if work == "" {
		work = filepath.Join(root, ".jobflow", "knative", "func")
	}
	b, err := New(bin, root, work)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFunctions builds every function with `func build --builder=host`
// and checks the OCI image layouts, then runs the processor with
// `func run --container=false` and sends it CloudEvents with `func invoke`
// and plain HTTP, with and without K_SINK.
func TestFunctions(t *testing.T) {
	b := builder(t)
	names, err := b.Functions()
	if err != nil {
		t.Fatal(err)
	}
	if only := os.Getenv("JOBFLOW_FUNC_FUNCTIONS"); only != "" {
		names = strings.Split(only, ",")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()

	var total time.Duration
	for _, name := range names {
		t.Run("build/"+name, func(t *testing.T) {
			took, err := b.Build(ctx, name)
			total += took
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("func build %s: %s", name, took.Round(100*time.Millisecond))
			checkImage(t, b, name)
		})
	}
	t.Logf("built %d functions in %s", len(names), total.Round(time.Second))

	if !slices.Contains(names, "processor") {
		return
	}
	t.Run("run/processor", func(t *testing.T) { runProcessor(ctx, t, b) })
}

// checkImage reads the OCI layout the host builder wrote.
func checkImage(t *testing.T, b *Builder, name string) {
	t.Helper()
	dir := b.Dir(name)
	img, err := os.ReadFile(filepath.Join(dir, ".func", "built-image"))
	if err != nil {
		t.Fatalf("no .func/built-image: %v", err)
	}
	if want := Registry + "/" + name + ":latest"; strings.TrimSpace(string(img)) != want {
		t.Errorf("built image %q, want %q", img, want)
	}
	last := filepath.Join(dir, ".func", "builds", "last")
	var index struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS, Architecture, Variant string
			} `json:"platform"`
		} `json:"manifests"`
	}
	raw, err := os.ReadFile(filepath.Join(last, "oci", "index.json"))
	if err != nil {
		t.Fatalf("no OCI index: %v", err)
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatalf("OCI index: %v", err)
	}
	var platforms []string
	for _, m := range index.Manifests {
		p := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			p += "/" + m.Platform.Variant
		}
		platforms = append(platforms, p)
		blob := filepath.Join(last, "oci", "blobs", strings.Replace(m.Digest, ":", "/", 1))
		if _, err := os.Stat(blob); err != nil {
			t.Errorf("manifest %s of %s: %v", m.Digest, p, err)
		}
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm/v7", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("image platforms %v, want %v", platforms, want)
	}
	// The binary is the function on func's wrapper, with the root module
	// from the proxy, and without Kubernetes libraries.
	bin := filepath.Join(last, "result", "f.linux.amd64")
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	info := string(out)
	for _, want := range []string{"knative.dev/func-go", repo.RootModule + "\t" + RootVersion} {
		if !strings.Contains(info, want) {
			t.Errorf("%s does not contain module %q:\n%s", bin, want, info)
		}
	}
	// Module paths are matched whole ("\tdep\tk8s.io/..."): sigs.k8s.io/yaml,
	// a small YAML-to-JSON library with no Kubernetes in it, is allowed.
	for _, heavy := range []string{"\tk8s.io/", "\tknative.dev/eventing", "\tknative.dev/pkg"} {
		if strings.Contains(info, heavy) {
			t.Errorf("%s links %s: keep Kubernetes libraries out of functions", bin, strings.TrimSpace(heavy))
		}
	}
	if st, err := os.Stat(bin); err == nil {
		t.Logf("%s: linux/amd64 binary %.1f MB", name, float64(st.Size())/1e6)
	}
}

const jobData = `{"id":"%s","create_date":"2026-11-23T17:00:00Z","sleep":5,"data_size":16}`

func runProcessor(ctx context.Context, t *testing.T, b *Builder) {
	// 1. No K_SINK: the output is the reply.
	in, err := b.Run(ctx, "processor")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", in.Port)
	waitReady(t, base)

	jobID := "7d4f6c1e-1b7a-4c7e-9b1a-2f0c7e6b9d10"
	out, err := b.Invoke(ctx, "processor", "--format=cloudevent", "--type=dev.jobflow.job.created",
		"--source=/e2e/funcbuild", "--id=invoke-1", "--data="+fmt.Sprintf(jobData, jobID))
	if err != nil {
		in.Stop()
		t.Fatal(err)
	}
	for _, want := range []string{"type: dev.jobflow.job.finished", "subject: " + jobID, `"status": "finish"`} {
		if !strings.Contains(out, want) {
			t.Errorf("func invoke output lacks %q:\n%s", want, out)
		}
	}

	send := func(id, typ, data string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(data))
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", id)
		req.Header.Set("Ce-Source", "/e2e/funcbuild")
		req.Header.Set("Ce-Type", typ)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		return resp
	}
	var firstID string
	for i := 0; i < 2; i++ { // a redelivery makes the same output event
		resp := send("curl-1", "dev.jobflow.job.created", fmt.Sprintf(jobData, jobID))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Type") != "dev.jobflow.job.finished" || !bytes.Contains(body, []byte(`"status":"finish"`)) {
			t.Fatalf("binary CloudEvent: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if i == 0 {
			firstID = resp.Header.Get("Ce-Id")
		} else if id := resp.Header.Get("Ce-Id"); id != firstID {
			t.Errorf("redelivered input made output id %s, first %s", id, firstID)
		}
	}
	// Knative retries 5xx, 404, 408, 409 and 429; an event the function
	// can never take (fn.Invalid) must answer another 4xx, as it does under
	// the local main, or the cluster retries it before dead-lettering it.
	if resp := send("curl-2", "dev.jobflow.job.finished", "{}"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("wrong event type under func's wrapper: status %d, want 400 (not retried)", resp.StatusCode)
	}
	if resp, err := http.Post(base+"/", "text/plain", strings.NewReader("hi")); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("plain POST: %v %v, want 415 from func's CloudEvent wrapper", resp, err)
	}
	in.Stop()

	// 2. With K_SINK, as a SinkBinding (or the local engine) sets it: the
	// output is POSTed to the sink before the delivery is acknowledged.
	// This runs the image's own binary (func run passes no environment).
	var mu sync.Mutex
	var got []http.Header
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()
	in, err = b.Start(ctx, "processor", "K_SINK="+sink.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	base = fmt.Sprintf("http://127.0.0.1:%d", in.Port)
	waitReady(t, base)
	resp := send("curl-1", "dev.jobflow.job.created", fmt.Sprintf(jobData, jobID))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("with K_SINK: status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Get("Ce-Type") != "dev.jobflow.job.finished" || got[0].Get("Ce-Id") != firstID {
		t.Errorf("K_SINK received %v, want one job.finished with id %s before the reply", got, firstID)
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/health/readiness not OK after 60s", base)
}
