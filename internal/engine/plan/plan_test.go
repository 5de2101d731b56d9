package plan_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

const (
	ingress  = "127.0.0.1:8070"
	postgres = "postgres://postgres@127.0.0.1:55432/jobflow?sslmode=disable"
)

func load(t *testing.T) *manifest.Topology {
	t.Helper()
	topo, err := manifest.Load("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// addresses gives every function of topo a made-up activator address.
func addresses(topo *manifest.Topology) plan.Addresses {
	at := plan.Addresses{
		Ingress: ingress, Functions: map[string]string{}, Adapters: map[string]int{},
		Postgres: postgres, ClickHouse: "127.0.0.1:59000", Brokers: []string{"127.0.0.1:9092"},
	}
	for i, f := range topo.Functions {
		at.Functions[f.Name] = fmt.Sprintf("127.0.0.1:%d", 9100+i)
	}
	for i, a := range topo.Adapters {
		at.Adapters[a.Name] = 9200 + i
	}
	return at
}

func build(t *testing.T, s plan.Settings) (*plan.Plan, plan.Addresses) {
	t.Helper()
	topo := load(t)
	at := addresses(topo)
	p, err := plan.Build(topo, s, at)
	if err != nil {
		t.Fatal(err)
	}
	return p, at
}

func env(f *plan.Function, name string) (string, bool) {
	for _, kv := range f.Env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v, true
		}
	}
	return "", false
}

// TestRepositoryPlan builds the plan of this repository's manifests and
// checks its wiring; nothing starts.
func TestRepositoryPlan(t *testing.T) {
	p, at := build(t, plan.Settings{Namespace: "jobflow", StateDir: "/state", Root: "/repo"})
	if len(p.Functions) < 8 || len(p.Sources) < 5 || len(p.Adapters) != 1 || len(p.Topics) == 0 || len(p.Sinks) == 0 {
		t.Fatalf("plan: %d functions, %d sources, %d adapters, %d topics, %d sinks",
			len(p.Functions), len(p.Sources), len(p.Adapters), len(p.Topics), len(p.Sinks))
	}
	sink := func(name string) string { return "http://" + ingress + "/jobflow/" + name }
	wantSink := map[string]string{
		"receiver": sink("receiver-sink"), "processor": sink("processor-sink"), "converter": sink("postgres-sink"),
		"users": sink("orders-users-sink"), "orders": "http://" + at.BrokerIngress + "/jobflow/orders",
		"saga":          "http://" + at.BrokerIngress + "/jobflow/orders",
		"config-source": sink("config-sink"),
	}
	for _, f := range p.Functions {
		got, ok := env(&f, "K_SINK")
		if want := wantSink[f.Name]; got != want || ok != (want != "") {
			t.Errorf("%s: K_SINK %q, want %q", f.Name, got, want)
		}
		if f.URL != "http://"+at.Functions[f.Name] || f.Bin != "/state/bin/"+f.Name || f.Package != "./cmd/"+f.Name {
			t.Errorf("%s: url %s bin %s package %s", f.Name, f.URL, f.Bin, f.Package)
		}
		if v, _ := env(&f, "KAFKA_BROKERS"); v != "127.0.0.1:9092" {
			t.Errorf("%s: KAFKA_BROKERS %q", f.Name, v)
		}
	}
	if v, _ := env(p.Function("converter"), "K_SINK_CLICKHOUSE"); v != sink("clickhouse-sink") {
		t.Errorf("converter: K_SINK_CLICKHOUSE %q, want the local ingress", v)
	}
	if s := p.Function("chsink").Scale; s.MaxScale != 3 || s.MinScale != 0 {
		t.Errorf("chsink scale: %+v", s)
	}
	// A function's cluster Service URL is its activator (live configuration's client).
	for _, name := range []string{"processor", "receiver", "pgsink", "chsink"} {
		if v, _ := env(p.Function(name), "JOBFLOW_CONFIG_URL"); v != "http://"+at.Functions["config-subscribe"] {
			t.Errorf("%s JOBFLOW_CONFIG_URL %q, want config-subscribe's %s", name, v, at.Functions["config-subscribe"])
		}
	}
	if v, _ := env(p.Function("config-source"), "JOBFLOW_DIR"); v != "/state" {
		t.Errorf("JOBFLOW_DIR %q", v)
	}
	for name, http := range map[string]bool{"dialogs": true, "query": true, "receiver": true, "users": true, "orders": true, "notify": true, "config-source": true, "config-subscribe": true,
		"processor": false, "converter": false, "pgsink": false, "chsink": false, "counter": false} {
		if f := p.Function(name); f == nil || f.HTTP != http {
			t.Errorf("%s: HTTP function %v, want %v", name, f != nil && f.HTTP, http)
		}
	}
}

func TestSourcesOfPlan(t *testing.T) {
	p, at := build(t, plan.Settings{Namespace: "jobflow"})
	dls := "http://" + ingress + "/jobflow/dead-letter-sink"
	want := map[string]struct {
		target             string
		maxInFlight, batch int
		topics             []string
		ordered            bool
	}{
		"processor-source": {"processor", 1000, 100, []string{"receiver-topic"}, false},
		"converter-source": {"converter", 400, 100, []string{"receiver-topic", "processor-topic"}, false},
		"pgsink-source":    {"pgsink", 16000, 1000, nil, false},
		"chsink-source":    {"chsink", 80000, 1000, []string{"clickhouse-topic"}, false},
		"counter-source":   {"counter", 1000, 1, []string{"dialogs.public.messages", "dialogs.public.users"}, false},
		"notify-users":     {"notify", 0, 1, []string{"orders-users"}, true},
	}
	for _, s := range p.Sources {
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected source %s", s.Name)
			continue
		}
		if s.Target != "http://"+at.Functions[w.target] || s.DeadLetter != dls {
			t.Errorf("%s: target %s dead letter %s", s.Name, s.Target, s.DeadLetter)
		}
		if s.Ordered != w.ordered || s.BatchSize != w.batch || (w.maxInFlight > 0 && s.MaxInFlight != w.maxInFlight) {
			t.Errorf("%s: ordered %v batch %d max in flight %d", s.Name, s.Ordered, s.BatchSize, s.MaxInFlight)
		}
		if w.topics != nil && !slices.Equal(s.Topics, w.topics) {
			t.Errorf("%s: topics %v, want %v", s.Name, s.Topics, w.topics)
		}
		if s.Policy.Retry != 10 || s.Policy.Backoff != delivery.Exponential || s.Policy.Delay != 200*time.Millisecond ||
			s.Policy.Timeout != 30*time.Second || s.Namespace != "jobflow" || s.Group == "" {
			t.Errorf("%s: policy %+v namespace %s group %s", s.Name, s.Policy, s.Namespace, s.Group)
		}
	}
	p, _ = build(t, plan.Settings{Namespace: "jobflow", OneEventPerRequest: true})
	for _, s := range p.Sources {
		if s.BatchSize != 1 {
			t.Errorf("%s: batch size %d with OneEventPerRequest", s.Name, s.BatchSize)
		}
	}
}

// TestFunctionsEmitBatchesUnlessOneEventPerRequest: the engine tells every
// function's emitter to send batches (its ingress takes them), except when
// every hop must be one event per request, as on Knative.
func TestFunctionsEmitBatchesUnlessOneEventPerRequest(t *testing.T) {
	for _, one := range []bool{false, true} {
		p, _ := build(t, plan.Settings{Namespace: "jobflow", OneEventPerRequest: one})
		if len(p.Functions) == 0 {
			t.Fatal("no functions")
		}
		for _, f := range p.Functions {
			if got := slices.Contains(f.Env, plan.EnvEmitBatch+"=true"); got == one {
				t.Errorf("%s with OneEventPerRequest %v: %s=true in its env is %v", f.Name, one, plan.EnvEmitBatch, got)
			}
		}
	}
}

// TestDatabasesOfPlan: func.yaml's secret keys become the local servers
// and databases named after them, created unless overridden.
func TestDatabasesOfPlan(t *testing.T) {
	p, _ := build(t, plan.Settings{Namespace: "jobflow"})
	db := func(name string) string { return strings.Replace(postgres, "/jobflow?", "/"+name+"?", 1) }
	checks := []struct{ function, env, want string }{
		{"dialogs", "JOBFLOW_DIALOGS_URL", db("dialogs")},
		{"counter", "JOBFLOW_COUNTERS_URL", db("counters")},
		{"query", "JOBFLOW_COUNTERS_URL", db("counters")},
		{"pgsink", "JOBFLOW_POSTGRES_URL", postgres},
		{"chsink", "JOBFLOW_CLICKHOUSE_ADDR", "127.0.0.1:59000"},
		{"chsink", "GOGC", "400"},
	}
	for _, c := range checks {
		if v, _ := env(p.Function(c.function), c.env); v != c.want {
			t.Errorf("%s: %s %q, want %q", c.function, c.env, v, c.want)
		}
	}
	if !slices.Contains(p.Databases, "counters") || !slices.Contains(p.Databases, "dialogs") {
		t.Errorf("databases to create %v", p.Databases)
	}
	p, _ = build(t, plan.Settings{Namespace: "jobflow", Databases: map[string]string{"dialogs": "postgres://elsewhere/d"}})
	if v, _ := env(p.Function("dialogs"), "JOBFLOW_DIALOGS_URL"); v != "postgres://elsewhere/d" {
		t.Errorf("dialogs override: %q", v)
	}
	if !slices.Contains(p.Databases, "counters") || slices.Contains(p.Databases, "dialogs") {
		t.Errorf("databases to create with dialogs overridden: %v", p.Databases)
	}
}

func TestAdaptersOfPlan(t *testing.T) {
	p, at := build(t, plan.Settings{Namespace: "jobflow", StateDir: "/state", Root: "/repo"})
	a := p.Adapters[0]
	if a.Package != "github.com/jobflow/jobflow/cmd/jobflow-cdc" || a.Dir != "/repo" || a.Bin != "/state/bin/"+a.Name {
		t.Errorf("adapter build: %+v", a)
	}
	if !slices.Equal(a.After, []string{"dialogs"}) || a.Port != at.Adapters[a.Name] {
		t.Errorf("adapter after %v port %d", a.After, a.Port)
	}
	want := map[string]string{
		"CDC_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
		"CDC_HTTP_ADDR":               fmt.Sprintf("127.0.0.1:%d", a.Port),
		"JOBFLOW_DIALOGS_URL":         strings.Replace(postgres, "/jobflow?", "/dialogs?", 1),
	}
	f := &plan.Function{Env: a.Env}
	for k, w := range want {
		if v, _ := env(f, k); v != w {
			t.Errorf("adapter env %s %q, want %q", k, v, w)
		}
	}
	// The snapshot markers' topic is created as Kafka Connect's offsets
	// topic: compacted, one partition.
	offsets, _ := env(f, "CDC_OFFSETS_TOPIC")
	found := false
	for _, tp := range p.Topics {
		found = found || tp.Name == offsets && tp.Partitions == 1 && tp.Config["cleanup.policy"] == "compact"
	}
	if offsets == "" || !found {
		t.Errorf("CDC_OFFSETS_TOPIC %q is not a planned compacted topic of one partition", offsets)
	}
}

func TestLocalPort(t *testing.T) {
	topo := load(t)
	want := map[string]int{"receiver": 8080, "query": 8081, "dialogs": 8082, "users": 8083, "orders": 8084, "notify": 8085,
		"payment": 8086, "stock": 8087, "delivery": 8088, "config-subscribe": 8089, "config-source": 8090}
	for _, f := range topo.Functions {
		got, err := plan.LocalPort(f, nil)
		if err != nil || got != want[f.Name] {
			t.Errorf("%s: port %d, %v; want %d", f.Name, got, err, want[f.Name])
		}
		if got, _ := plan.LocalPort(f, map[string]int{f.Name: 18000}); got != 18000 {
			t.Errorf("%s: override gives %d", f.Name, got)
		}
	}
	bad := manifest.Function{Name: "f"}
	bad.Deploy.Annotations = map[string]string{manifest.AnnotationLocalPort: "http"}
	if _, err := plan.LocalPort(bad, nil); err == nil {
		t.Error("a port that is not a number: no error")
	}
}

func TestSelect(t *testing.T) {
	topo := load(t)
	if err := plan.Select(topo, []string{"pgsink", "chsink"}); err != nil {
		t.Fatal(err)
	}
	if len(topo.Functions) != 2 || len(topo.Sources) != 2 || len(topo.Bindings) != 0 {
		t.Errorf("selected %d functions, %d sources, %d bindings", len(topo.Functions), len(topo.Sources), len(topo.Bindings))
	}
	if _, err := plan.Build(topo, plan.Settings{}, addresses(topo)); err != nil {
		t.Errorf("plan of a selection: %v", err)
	}
	if err := plan.Select(load(t), []string{"nope"}); err == nil {
		t.Error("selecting an unknown function: no error")
	}
}

func TestUnknownSecretKey(t *testing.T) {
	topo := load(t)
	topo.Functions[0].Run.Envs = append(topo.Functions[0].Run.Envs, manifest.EnvVar{Name: "X", Value: "{{ secret:jobflow-db:postgres-password }}"})
	if _, err := plan.Build(topo, plan.Settings{}, addresses(topo)); err == nil || !strings.Contains(err.Error(), "postgres-password") {
		t.Errorf("unknown secret key: %v", err)
	}
}

// TestGeneratedKeys: a secret key <name>-key is a signing key the engine
// makes once per state directory: every function naming it gets the same
// value, and a later plan on the same directory the same again.
func TestGeneratedKeys(t *testing.T) {
	dir := t.TempDir()
	build := func() []string {
		topo := load(t)
		var vals []string
		for i := range topo.Functions[:2] {
			topo.Functions[i].Run.Envs = append(topo.Functions[i].Run.Envs, manifest.EnvVar{Name: "SIGN", Value: "{{ secret:auth:jwt-key }}"})
		}
		p, err := plan.Build(topo, plan.Settings{StateDir: dir}, addresses(topo))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range p.Functions {
			for _, e := range f.Env {
				if v, ok := strings.CutPrefix(e, "SIGN="); ok {
					vals = append(vals, v)
				}
			}
		}
		return vals
	}
	first, again := build(), build()
	if len(first) != 2 || len(first[0]) != 64 || first[0] != first[1] || len(again) != 2 || again[0] != first[0] {
		t.Errorf("generated keys %q then %q: want one 64-hex key, kept", first, again)
	}
}
