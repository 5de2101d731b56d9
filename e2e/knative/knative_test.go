package knative

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/jobflow/jobflow/e2e/internal/repo"
	"github.com/jobflow/jobflow/internal/manifest"
)

// TestClusterManifests runs offline: the manifests `make deploy` applies
// besides brokers/, sinks/ and triggers/ (namespaces, databases, the CDC
// source) decode strictly into the Kubernetes types, and the jobflow-db
// Secret holds every key the functions' func.yaml envs name.
func TestClusterManifests(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "e2e", "knative", "cluster", "*.yaml"))
	adapters, _ := filepath.Glob(filepath.Join(root, "adapters", "*.yaml"))
	files = append(files, adapters...)
	if len(files) == 0 {
		t.Fatal("no e2e/knative/cluster/*.yaml")
	}
	secrets := map[string]map[string]bool{}
	deployments := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range manifest.SplitDocuments(b) {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			var v any
			switch head.APIVersion + "/" + head.Kind {
			case "v1/Namespace":
				v = &corev1.Namespace{}
			case "v1/Secret":
				v = &corev1.Secret{}
			case "v1/ConfigMap":
				v = &corev1.ConfigMap{}
			case "v1/Service":
				v = &corev1.Service{}
			case "apps/v1/Deployment":
				v = &appsv1.Deployment{}
			default:
				t.Errorf("%s document %d: %s %s has no check here", f, i+1, head.APIVersion, head.Kind)
				continue
			}
			if err := yaml.UnmarshalStrict(doc, v); err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
				continue
			}
			switch o := v.(type) {
			case *corev1.Secret:
				secrets[o.Name] = map[string]bool{}
				for k := range o.StringData {
					secrets[o.Name][k] = true
				}
			case *appsv1.Deployment:
				deployments++
				sel := o.Spec.Selector.MatchLabels
				for k, want := range sel {
					if o.Spec.Template.Labels[k] != want {
						t.Errorf("deployment %s: selector %s=%s does not match its pods", o.Name, k, want)
					}
				}
				for _, c := range o.Spec.Template.Spec.Containers {
					if !strings.Contains(c.Image, ":") {
						t.Errorf("deployment %s: image %q is not pinned to a tag", o.Name, c.Image)
					}
					for _, e := range c.Env {
						if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
							if !secrets[r.SecretKeyRef.Name][r.SecretKeyRef.Key] {
								t.Errorf("deployment %s: secret %s has no key %s", o.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key)
							}
						}
					}
				}
			}
		}
	}
	if deployments == 0 {
		t.Error("no Deployment checked")
	}
	topo, err := manifest.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range topo.Functions {
		for _, e := range f.Run.Envs {
			var name, key string
			if n, _ := fmt.Sscanf(strings.NewReplacer("{{", "", "}}", "", ":", " ").Replace(e.Value), " secret %s %s", &name, &key); n == 2 {
				if !secrets[name][key] {
					t.Errorf("function %s: env %s names secret %s key %s, which e2e/knative/cluster does not create", f.Name, e.Name, name, key)
				}
			}
		}
	}
}

func cluster(t *testing.T) *Cluster {
	t.Helper()
	e, ok := EnvFromOS()
	if !ok {
		t.Skip("JOBFLOW_E2E_KUBECONFIG is not set: the Knative suite needs a cluster (make kind-up knative-install deploy e2e); skipping")
	}
	c, err := Connect(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCluster is the suite: its steps run in order on one deployment.
func TestCluster(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	topo, err := manifest.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"ready", func(t *testing.T) { testReady(ctx, t, c, topo) }},
		{"sinkbindings", func(t *testing.T) { testSinkBindings(ctx, t, c, topo) }},
		{"jobs", func(t *testing.T) { jobs = testJobs(ctx, t, c) }},
		{"databases", func(t *testing.T) { testDatabases(ctx, t, c, jobs) }},
		{"counters", func(t *testing.T) { testCounters(ctx, t, c) }},
		{"orders", func(t *testing.T) { testOrders(ctx, t, c) }},
		{"scale-to-zero", func(t *testing.T) { testScaleToZero(ctx, t, c, topo) }},
		{"scale-out", func(t *testing.T) { testScaleOut(ctx, t, c) }},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.Fatalf("step %s failed; later steps need it", s.name)
		}
	}
}

// testReady: every function's Knative Service, every KafkaSink,
// SinkBinding, KafkaSource and KafkaTopic of the manifests is Ready.
func testReady(ctx context.Context, t *testing.T, c *Cluster, topo *manifest.Topology) {
	type obj struct {
		gvr       schema.GroupVersionResource
		namespace string
		name      string
	}
	var objs []obj
	for _, f := range topo.Functions {
		objs = append(objs, obj{KService, c.Namespace, f.Name})
	}
	for _, s := range topo.Sinks {
		objs = append(objs, obj{KafkaSink, s.Namespace, s.Name})
	}
	for _, b := range topo.Bindings {
		objs = append(objs, obj{SinkBinding, b.Namespace, b.Name})
	}
	for _, s := range topo.Sources {
		objs = append(objs, obj{KafkaSource, s.Namespace, s.Name})
	}
	for _, tp := range topo.Topics {
		objs = append(objs, obj{KafkaTopic, tp.Namespace, tp.Name})
	}
	for _, o := range objs {
		err := Eventually(ctx, 5*time.Minute, 3*time.Second, func() error {
			u, err := c.Dyn.Resource(o.gvr).Namespace(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ok, msg := Ready(u); !ok {
				return fmt.Errorf("%s %s/%s not Ready: %s", o.gvr.Resource, o.namespace, o.name, msg)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// testSinkBindings: each bound function's Knative Service carries K_SINK
// with its KafkaSink's address, as the local engine sets it.
func testSinkBindings(ctx context.Context, t *testing.T, c *Cluster, topo *manifest.Topology) {
	for _, b := range topo.Bindings {
		target, err := topo.Target(b.Spec.Sink)
		if err != nil {
			t.Fatal(err)
		}
		kind, name := KafkaSink, target.Sink
		if target.Broker != "" { // a function emitting into a Broker (orders)
			kind, name = Broker, target.Broker
		}
		sink, err := c.Get(ctx, kind, name)
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := unstructured.NestedString(sink.Object, "status", "address", "url")
		fn := b.Spec.Subject.Name
		err = Eventually(ctx, 2*time.Minute, 3*time.Second, func() error {
			ksvc, err := c.Get(ctx, KService, fn)
			if err != nil {
				return err
			}
			containers, _, _ := unstructured.NestedSlice(ksvc.Object, "spec", "template", "spec", "containers")
			for _, ct := range containers {
				envs, _, _ := unstructured.NestedSlice(ct.(map[string]any), "env")
				for _, e := range envs {
					m := e.(map[string]any)
					if m["name"] == "K_SINK" {
						if m["value"] != want {
							return fmt.Errorf("ksvc %s: K_SINK=%v, %s %s is at %s", fn, m["value"], kind.Resource, name, want)
						}
						return nil
					}
				}
			}
			return fmt.Errorf("ksvc %s has no K_SINK (SinkBinding %s)", fn, b.Name)
		})
		if err != nil {
			t.Error(err)
		}
	}
}

type jobInfo struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Checksum string `json:"checksum"`
}

// testJobs sends jobs as REST and as CloudEvent POSTs through the ingress
// and waits until the query function reports them finished.
func testJobs(ctx context.Context, t *testing.T, c *Cluster) []string {
	const n = 10
	var ids []string
	for i := 0; i < n; i++ {
		status, _, body, err := c.Do(ctx, "receiver", http.MethodPost, "/create/job",
			http.Header{"Content-Type": {"application/json"}}, []byte(`{"sleep":100,"data_size":64}`))
		if err != nil || status != http.StatusOK {
			t.Fatalf("POST /create/job: %d %s %v", status, body, err)
		}
		var j jobInfo
		if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
			t.Fatalf("POST /create/job answer %s: %v", body, err)
		}
		ids = append(ids, j.ID)
	}
	source := "/e2e/knative/" + uuid.NewString()
	for i := 0; i < n; i++ {
		h := http.Header{
			"Ce-Specversion": {"1.0"}, "Ce-Id": {strconv.Itoa(i)}, "Ce-Source": {source},
			"Ce-Type": {"dev.jobflow.job.requested"}, "Content-Type": {"application/json"},
		}
		var first string
		for try := 0; try < 2; try++ { // a resent request makes no second job
			status, hdr, body, err := c.Do(ctx, "receiver", http.MethodPost, "/", h, []byte(`{"sleep":100,"data_size":64}`))
			if err != nil || status != http.StatusOK || hdr.Get("Ce-Type") != "dev.jobflow.job.created" {
				t.Fatalf("CloudEvent POST: %d %v %s %v", status, hdr, body, err)
			}
			var j jobInfo
			if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
				t.Fatalf("job.created data %s: %v", body, err)
			}
			if try == 0 {
				first = j.ID
				ids = append(ids, j.ID)
			} else if j.ID != first {
				t.Errorf("resent CloudEvent %s made job %s, first %s", h.Get("Ce-Id"), j.ID, first)
			}
		}
	}
	for _, id := range ids {
		err := Eventually(ctx, 5*time.Minute, 2*time.Second, func() error {
			status, _, body, err := c.Do(ctx, "query", http.MethodGet, "/info/"+id, nil, nil)
			if err != nil {
				return err
			}
			var j jobInfo
			if status != http.StatusOK || json.Unmarshal(body, &j) != nil {
				return fmt.Errorf("GET /info/%s: %d %s", id, status, body)
			}
			if j.Status != "finish" || j.Checksum == "" {
				return fmt.Errorf("job %s: %s", id, body)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	status, _, body, err := c.Do(ctx, "query", http.MethodGet, "/stats", nil, nil)
	if err != nil || status != http.StatusOK {
		t.Errorf("GET /stats: %d %s %v", status, body, err)
	}
	t.Logf("%d jobs finished; /stats: %s", len(ids), body)
	return ids
}

// testDatabases reads the jobs table and the job_events table directly.
func testDatabases(ctx context.Context, t *testing.T, c *Cluster, ids []string) {
	if len(ids) == 0 {
		t.Fatal("no jobs")
	}
	quoted := "'" + strings.Join(ids, "','") + "'"
	out, err := c.Exec(ctx, "postgres", "psql", "-U", "postgres", "-d", "jobflow", "-tAc",
		"SELECT count(*) FROM jobs WHERE status = 'finish' AND checksum IS NOT NULL AND id IN ("+quoted+")")
	if err != nil {
		t.Fatal(err)
	}
	if out != strconv.Itoa(len(ids)) {
		t.Errorf("PostgreSQL: %s finished jobs of %d", out, len(ids))
	}
	err = Eventually(ctx, 2*time.Minute, 3*time.Second, func() error {
		out, err := c.Exec(ctx, "clickhouse", "clickhouse-client", "-q",
			"SELECT countDistinct(job_id, event) FROM job_events WHERE job_id IN ("+quoted+")")
		if err != nil {
			return err
		}
		if out != strconv.Itoa(2*len(ids)) { // created and finished
			return fmt.Errorf("ClickHouse: %s (job, event) pairs, want %d", out, 2*len(ids))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

type counters struct {
	UserID int64 `json:"user_id"`
	Total  int64 `json:"total"`
	Unread int64 `json:"unread"`
}

// testCounters writes messages through the dialogs function and waits for
// the counter (fed by the CDC source) to show them through query.
func testCounters(ctx context.Context, t *testing.T, c *Cluster) {
	post := func(path string, v any) map[string]any {
		b, _ := json.Marshal(v)
		var status int
		var body []byte
		err := Eventually(ctx, 2*time.Minute, 2*time.Second, func() error {
			var err error
			status, _, body, err = c.Do(ctx, "dialogs", http.MethodPost, path, http.Header{"Content-Type": {"application/json"}}, b)
			if err != nil || status/100 != 2 {
				return fmt.Errorf("POST %s: %d %s %v", path, status, body, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.Unmarshal(body, &out)
		return out
	}
	sender := post("/users", map[string]any{"name": "e2e-sender"})
	recipient := post("/users", map[string]any{"name": "e2e-recipient"})
	sid, rid := int64(sender["id"].(float64)), int64(recipient["id"].(float64))
	var msgs []int64
	for i := 0; i < 3; i++ {
		m := post("/messages", map[string]any{"sender_id": sid, "recipient_id": rid, "body": fmt.Sprint("hello ", i)})
		msgs = append(msgs, int64(m["id"].(float64)))
	}
	post(fmt.Sprintf("/messages/%d/read", msgs[0]), map[string]any{})
	err := Eventually(ctx, 5*time.Minute, 3*time.Second, func() error {
		status, _, body, err := c.Do(ctx, "query", http.MethodGet, fmt.Sprintf("/counters/%d", rid), nil, nil)
		if err != nil {
			return err
		}
		var got counters
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			return fmt.Errorf("GET /counters/%d: %d %s", rid, status, body)
		}
		if got.Total != 3 || got.Unread != 2 {
			return fmt.Errorf("counters of %d: %+v, want total 3 unread 2", rid, got)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// testScaleToZero waits for every function to have no pods once idle
// (min-scale 0, retention 0s, a 60 s stable window and the 30 s grace).
func testScaleToZero(ctx context.Context, t *testing.T, c *Cluster, topo *manifest.Topology) {
	start := time.Now()
	for _, f := range topo.Functions {
		err := Eventually(ctx, 5*time.Minute, 5*time.Second, func() error {
			n, err := c.Pods(ctx, f.Name)
			if err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("function %s: %d pods", f.Name, n)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("all functions at zero pods %s after the last request", time.Since(start).Round(time.Second))
}

// testScaleOut loads the receiver with hey (concurrency far over its
// target of 100 * 70%) and expects more than one receiver pod, and the
// processor to come up from zero to work the jobs.
func testScaleOut(ctx context.Context, t *testing.T, c *Cluster) {
	hey, err := exec.LookPath(c.Hey)
	if err != nil {
		t.Fatalf("hey load generator %q: %v (make e2e installs it with go install)", c.Hey, err)
	}
	host, err := c.Host(ctx, "receiver")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	peak := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for _, fn := range []string{"receiver", "processor"} {
				if n, err := c.Pods(ctx, fn); err == nil {
					mu.Lock()
					peak[fn] = max(peak[fn], n)
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	cmd := exec.CommandContext(ctx, hey, "-z", "60s", "-c", "250", "-m", "POST", "-T", "application/json",
		"-d", `{"sleep":100,"data_size":64}`, "-host", host, strings.TrimRight(c.Ingress, "/")+"/create/job")
	out, err := cmd.CombinedOutput()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("hey: %v\n%s", err, out)
	}
	t.Logf("hey:\n%s", summary(string(out)))
	mu.Lock()
	defer mu.Unlock()
	if peak["receiver"] < 2 {
		t.Errorf("receiver peaked at %d pods under 250 concurrent requests, want scale-out to 2 or more", peak["receiver"])
	}
	if peak["processor"] < 1 {
		t.Errorf("processor never came up from zero (%d pods)", peak["processor"])
	}
	if !strings.Contains(string(out), "[200]") {
		t.Errorf("hey saw no 200 answers")
	}
	t.Logf("peak pods: %v", peak)
}

func summary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if slices.ContainsFunc([]string{"Requests/sec", "Average", "Slowest", "[", "Total:"}, func(p string) bool { return strings.Contains(l, p) }) {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "\n")
}
