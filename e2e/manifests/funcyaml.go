package manifests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"

	"github.com/jobflow/jobflow/e2e/internal/repo"
)

// Knative Functions CLI whose func.yaml schema the functions must satisfy.
const (
	FuncModule  = "knative.dev/func"
	FuncVersion = "v0.44.0"
	// FuncSpecVersion is the last func.yaml migration of FuncVersion: a
	// func.yaml at an older one is rewritten by every func command.
	FuncSpecVersion = "0.36.0"
)

// FuncSchema loads schema/func_yaml-schema.json of FuncModule@FuncVersion.
func FuncSchema() (*gojsonschema.Schema, error) {
	dir, err := repo.ModuleDir(FuncModule, FuncVersion)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "schema", "func_yaml-schema.json"))
	if err != nil {
		return nil, err
	}
	return gojsonschema.NewSchema(gojsonschema.NewBytesLoader(b))
}

// FuncYAML is the part of func.yaml the deployment rules look at.
type FuncYAML struct {
	SpecVersion string `json:"specVersion"`
	Name        string `json:"name"`
	Runtime     string `json:"runtime"`
	Invoke      string `json:"invoke"`
	Created     string `json:"created"`
	Namespace   string `json:"namespace"`
	Registry    string `json:"registry"`
	Build       struct {
		Builder string `json:"builder"`
	} `json:"build"`
	Run struct {
		Envs []struct{ Name, Value string } `json:"envs"`
	} `json:"run"`
	Deploy struct {
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations"`
		Labels      []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"labels"`
	} `json:"deploy"`
}

// Autoscaling annotations every function sets: it scales to zero and has
// a bounded scale-out driven by concurrency.
const (
	annMinScale    = "autoscaling.knative.dev/min-scale"
	annMaxScale    = "autoscaling.knative.dev/max-scale"
	annMetric      = "autoscaling.knative.dev/metric"
	annTarget      = "autoscaling.knative.dev/target"
	annUtilization = "autoscaling.knative.dev/target-utilization-percentage"
	annRetention   = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
	annWindow      = "autoscaling.knative.dev/window"
)

var secretRef = regexp.MustCompile(`^\{\{ *secret:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[-._a-zA-Z0-9]+ *\}\}$`)

// CheckFuncYAML validates one func.yaml against schema and the project's
// deployment rules, and returns it decoded.
func CheckFuncYAML(schema *gojsonschema.Schema, b []byte, dirName string) (*FuncYAML, error) {
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var errs []string
	res, err := schema.Validate(gojsonschema.NewBytesLoader(js))
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	for _, e := range res.Errors() {
		errs = append(errs, "schema: "+e.String())
	}
	var f FuncYAML
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.SpecVersion != FuncSpecVersion {
		errs = append(errs, fmt.Sprintf("specVersion %q: func %s writes %s", f.SpecVersion, FuncVersion, FuncSpecVersion))
	}
	if f.Name != dirName {
		errs = append(errs, fmt.Sprintf("name %q: want the folder's name %q", f.Name, dirName))
	}
	if f.Runtime != "go" {
		errs = append(errs, fmt.Sprintf("runtime %q: want go", f.Runtime))
	}
	if f.Invoke != "http" && f.Invoke != "cloudevent" {
		errs = append(errs, fmt.Sprintf("invoke %q: want http or cloudevent", f.Invoke))
	}
	if _, err := time.Parse(time.RFC3339, f.Created); err != nil {
		errs = append(errs, fmt.Sprintf("created %q: %v", f.Created, err))
	}
	if f.Deploy.Namespace == "" || (f.Namespace != "" && f.Namespace != f.Deploy.Namespace) {
		errs = append(errs, "deploy.namespace is required (and equal to namespace if that is set)")
	}
	for _, e := range f.Run.Envs {
		if strings.Contains(e.Value, "{{") && !secretRef.MatchString(e.Value) {
			errs = append(errs, fmt.Sprintf("env %s: %q is not a {{ secret:<name>:<key> }} reference", e.Name, e.Value))
		}
		if e.Name == "K_SINK" {
			errs = append(errs, "env K_SINK: set by the function's SinkBinding, not by func.yaml")
		}
	}
	if err := checkAutoscaling(f.Deploy.Annotations); err != nil {
		errs = append(errs, err.Error())
	}
	if err := checkVisibility(&f); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return &f, errors.New(strings.Join(errs, "; "))
	}
	return &f, nil
}

// Knative Serving's visibility label: a Service labelled cluster-local gets
// no public route (knative.dev/networking's VisibilityLabelKey).
const (
	labelVisibility   = "networking.knative.dev/visibility"
	visibilityPrivate = "cluster-local"
)

// checkVisibility: a function invoked with CloudEvents is reached only by
// the eventing data plane (KafkaSources, Triggers), never by users, so it
// must be cluster-local; an http function is the users' entry point and may
// be public (or cluster-local). No other visibility value exists.
func checkVisibility(f *FuncYAML) error {
	visibility, set := "", false
	for _, l := range f.Deploy.Labels {
		if l.Key == labelVisibility {
			visibility, set = l.Value, true
		}
	}
	switch {
	case set && visibility != visibilityPrivate:
		return fmt.Errorf("label %s=%q: the only value is %s", labelVisibility, visibility, visibilityPrivate)
	case f.Invoke == "cloudevent" && visibility != visibilityPrivate:
		return fmt.Errorf("deploy.labels: a cloudevent function is called by the data plane only: "+
			"label it %s: %s so it has no public route", labelVisibility, visibilityPrivate)
	}
	return nil
}

// checkAutoscaling applies Knative Serving's rules for the autoscaling
// annotations the functions use (KPA, concurrency metric).
func checkAutoscaling(a map[string]string) error {
	var errs []string
	intIn := func(k string, lo, hi int) int {
		v, ok := a[k]
		if !ok {
			errs = append(errs, "annotation "+k+" is required")
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Sprintf("annotation %s=%q: want an integer in [%d, %d]", k, v, lo, hi))
		}
		return n
	}
	durIn := func(k string, lo, hi time.Duration) {
		v, ok := a[k]
		if !ok {
			errs = append(errs, "annotation "+k+" is required")
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			errs = append(errs, fmt.Sprintf("annotation %s=%q: want a duration in [%s, %s]", k, v, lo, hi))
		}
	}
	if v := a[annMinScale]; v != "0" {
		errs = append(errs, fmt.Sprintf("annotation %s=%q: want \"0\" (scale to zero)", annMinScale, v))
	}
	if max := intIn(annMaxScale, 1, 1000); max < 1 {
		errs = append(errs, annMaxScale+" must allow scale-out")
	}
	if v := a[annMetric]; v != "concurrency" && v != "rps" {
		errs = append(errs, fmt.Sprintf("annotation %s=%q: want concurrency or rps (KPA)", annMetric, v))
	}
	intIn(annTarget, 1, 10000)
	intIn(annUtilization, 1, 100)
	durIn(annWindow, 6*time.Second, time.Hour)
	durIn(annRetention, 0, time.Hour)
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }
