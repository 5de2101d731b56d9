package manifests

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/jobflow/jobflow/e2e/internal/crdcheck"
	"github.com/jobflow/jobflow/e2e/internal/repo"
	"github.com/jobflow/jobflow/internal/manifest"
)

func root(t *testing.T) string {
	t.Helper()
	r, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func crds(t *testing.T) crdcheck.Set {
	t.Helper()
	set, err := LoadCRDs()
	if err != nil {
		t.Fatalf("load Knative CRDs: %v", err)
	}
	for _, k := range []struct{ apiVersion, kind string }{
		{"sources.knative.dev/v1", "KafkaSource"},
		{"eventing.knative.dev/v1alpha1", "KafkaSink"},
		{"sources.knative.dev/v1", "SinkBinding"},
		{"eventing.knative.dev/v1", "Broker"},
		{"eventing.knative.dev/v1", "Trigger"},
		{"sources.knative.dev/v1", "PingSource"},
	} {
		if !set.Has(k.apiVersion, k.kind) {
			t.Fatalf("no CRD schema for %s %s", k.apiVersion, k.kind)
		}
	}
	return set
}

// TestVersionsMatchGoMod keeps the versions the docs and install targets
// name equal to the ones the checks compile against.
func TestVersionsMatchGoMod(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "e2e", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("e2e/go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"knative.dev/eventing": EventingVersion, "knative.dev/eventing-kafka-broker": EventingKafkaVersion}
	for _, r := range mf.Require {
		if v, ok := want[r.Mod.Path]; ok {
			if r.Mod.Version != v {
				t.Errorf("%s is %s in e2e/go.mod, the checks name %s", r.Mod.Path, r.Mod.Version, v)
			}
			delete(want, r.Mod.Path)
		}
	}
	for p := range want {
		t.Errorf("%s is not required by e2e/go.mod", p)
	}
}

// TestManifests decodes every document in brokers/, sinks/ and triggers/
// strictly, defaults and validates it with Knative's own types, and checks
// it against the CRD schemas.
func TestManifests(t *testing.T) {
	topo, err := manifest.Load(root(t))
	if err != nil {
		t.Fatal(err)
	}
	set := crds(t)
	ctx := Context()
	count := map[string]int{}
	for _, d := range topo.Documents {
		t.Run(filepath.Base(d.File)+"/"+d.Kind+"/"+d.Name, func(t *testing.T) {
			if _, err := Decode(ctx, set, d.Raw); err != nil {
				t.Errorf("%s: %v", d.File, err)
			}
		})
		count[d.Kind]++
	}
	for _, k := range []string{"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaSource", "KafkaSink", "SinkBinding", "Broker", "Trigger", "PingSource"} {
		if count[k] == 0 {
			t.Errorf("no %s in the manifests", k)
		}
	}
	t.Logf("checked %d documents: %v", len(topo.Documents), count)
}

// TestChecksReject feeds the checks manifests that a cluster (or its
// Kafka data plane) would refuse, and some it takes, from testdata/.
func TestChecksReject(t *testing.T) {
	set := crds(t)
	ctx := Context()
	for _, dir := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no testdata/%s: %v", dir, err)
		}
		for _, f := range files {
			t.Run(dir+"/"+filepath.Base(f), func(t *testing.T) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				docs := manifest.SplitDocuments(b)
				for i, doc := range docs {
					_, err := Decode(ctx, set, doc)
					want := expectation(doc)
					switch {
					case dir == "good" && err != nil:
						t.Errorf("document %d: %v", i+1, err)
					case dir == "bad" && err == nil:
						t.Errorf("document %d: accepted, want an error containing %q", i+1, want)
					case dir == "bad" && !strings.Contains(err.Error(), want):
						t.Errorf("document %d: error %q does not contain %q", i+1, err, want)
					}
				}
			})
		}
	}
}

// expectation is the text after "# want: " in a bad document.
func expectation(doc []byte) string {
	for _, l := range strings.Split(string(doc), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "# want: "); ok {
			return s
		}
	}
	return "(a # want: line)"
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
