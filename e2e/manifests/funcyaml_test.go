package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFuncYAML validates every functions/<name>/func.yaml against the
// func.yaml JSON schema of knative.dev/func v0.44.0 and the deployment
// rules (runtime go, invoke, created, scale-to-zero annotations).
func TestFuncYAML(t *testing.T) {
	schema, err := FuncSchema()
	if err != nil {
		t.Fatalf("func.yaml schema: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(root(t), "functions", "*", "func.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no functions/*/func.yaml: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := CheckFuncYAML(schema, b, name); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), "go.mod")); err != nil {
				t.Errorf("%s: a Go function needs its own go.mod: %v", name, err)
			}
		})
	}
}

// TestFuncYAMLRejects shows the schema and rules refuse what func or a
// cluster would not take.
func TestFuncYAMLRejects(t *testing.T) {
	schema, err := FuncSchema()
	if err != nil {
		t.Fatal(err)
	}
	good := `specVersion: 0.36.0
name: f
runtime: go
created: 2026-11-23T17:30:00Z
invoke: cloudevent
run:
  envs:
    - name: DB
      value: "{{ secret:jobflow-db:url }}"
deploy:
  namespace: jobflow
  labels:
    - key: networking.knative.dev/visibility
      value: cluster-local
  annotations:
    autoscaling.knative.dev/min-scale: "0"
    autoscaling.knative.dev/max-scale: "3"
    autoscaling.knative.dev/metric: concurrency
    autoscaling.knative.dev/target: "100"
    autoscaling.knative.dev/target-utilization-percentage: "70"
    autoscaling.knative.dev/scale-to-zero-pod-retention-period: "0s"
    autoscaling.knative.dev/window: 60s
`
	if _, err := CheckFuncYAML(schema, []byte(good), "f"); err != nil {
		t.Fatalf("good func.yaml: %v", err)
	}
	for _, c := range []struct{ from, to, want string }{
		{"invoke: cloudevent", "invoke: grpc", "invoke"},
		{"runtime: go", "runtime: go\nbuild:\n  builder: host", "build.builder"},
		{"created: 2026-11-23T17:30:00Z", "created: yesterday", "created"},
		{"name: f", "name: F_1", "name"},
		{"deploy:", "colour: blue\ndeploy:", "colour"},
		{`min-scale: "0"`, `min-scale: "1"`, "scale to zero"},
		{"window: 60s", "window: 2s", "window"},
		{"{{ secret:jobflow-db:url }}", "{{ secrets:jobflow-db }}", "secret"},
		{"specVersion: 0.36.0", "specVersion: 0.35.0", "specVersion"},
		{"value: cluster-local", "value: public", "the only value is cluster-local"},
		{"key: networking.knative.dev/visibility", "key: app", "cloudevent function is called by the data plane only"},
		{"key: networking.knative.dev/visibility", "key: networking.knative.dev/visibility!", "schema"},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if _, err := CheckFuncYAML(schema, []byte(bad), "f"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q -> %q: got %v, want an error about %s", c.from, c.to, err, c.want)
		}
	}
}
