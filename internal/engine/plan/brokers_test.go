package plan_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

const brokerIngress = "127.0.0.1:8071"

func loadFixture(t *testing.T) *manifest.Topology {
	t.Helper()
	topo, err := manifest.Load("testdata/brokerplane")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func buildFixture(t *testing.T, topo *manifest.Topology) (*plan.Plan, error) {
	t.Helper()
	at := addresses(topo)
	at.BrokerIngress = brokerIngress
	return plan.Build(topo, plan.Settings{Namespace: "jobflow"}, at)
}

func TestBrokerPlan(t *testing.T) {
	topo := loadFixture(t)
	p, err := buildFixture(t, topo)
	if err != nil {
		t.Fatal(err)
	}
	broker := func(name string) string { return "http://" + brokerIngress + "/shop/" + name }
	if len(p.Brokers) != 2 {
		t.Fatalf("brokers %+v", p.Brokers)
	}
	b := p.Brokers[0]
	if b.Name != "default" || b.Namespace != "shop" || b.Topic != "knative-broker-shop-default" || b.Partitions != 3 ||
		!reflect.DeepEqual(b.Config, map[string]string{"retention.ms": "3600000"}) || b.URL != broker("default") {
		t.Errorf("broker %+v", b)
	}
	if b.Sink().Path() != "/shop/default" {
		t.Errorf("ingress path %s", b.Sink().Path())
	}
	want := kafkabroker.TopicSpec{Name: "knative-broker-shop-other", Partitions: 3, Config: map[string]string{"retention.ms": "3600000"}}
	if got := p.Topics[len(p.Topics)-1]; !reflect.DeepEqual(got, want) {
		t.Errorf("broker topic %+v, want %+v", got, want)
	}
	echo := p.Function("echo")
	if v, _ := env(echo, "K_SINK"); v != broker("default") {
		t.Errorf("K_SINK of a function bound to a Broker: %q", v)
	}
	if v, _ := env(echo, "K_SINK_OTHER"); v != broker("other") {
		t.Errorf("a kafka-broker-ingress URL is not rewritten: %q", v)
	}
	if len(p.Pings) != 1 || p.Pings[0].Sink != broker("default") || p.Pings[0].Source() != "/apis/v1/namespaces/shop/pingsources/tick" ||
		p.Pings[0].Schedule != "*/2 * * * *" || p.Pings[0].Timezone != "Europe/Paris" || p.Pings[0].Data != `{"tick": true}` {
		t.Errorf("pings %+v", p.Pings)
	}
}

func TestTriggersOfPlan(t *testing.T) {
	p, err := buildFixture(t, loadFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	brokerPolicy := delivery.Policy{Retry: 2, Backoff: delivery.Linear, Delay: 100 * time.Millisecond, Timeout: delivery.Defaults.Timeout}
	own := delivery.Defaults
	own.Retry = 5
	dls := "http://" + ingress + "/shop/dls"
	want := map[string]plan.Trigger{
		"to-function": {Broker: "default", Target: "http://" + addresses(loadFixture(t)).Functions["echo"] + "/orders", Policy: brokerPolicy, DeadLetter: dls,
			Attributes: map[string]string{"type": "order.placed"}},
		"to-sink":   {Broker: "default", Target: "http://" + ingress + "/shop/orders-sink", Policy: own, Ordered: true},
		"to-broker": {Broker: "default", Target: "http://" + brokerIngress + "/shop/other", Policy: brokerPolicy, DeadLetter: dls, ByKey: true},
		"to-uri":    {Broker: "other", Target: "http://" + brokerIngress + "/shop/default", Policy: delivery.Defaults},
	}
	if len(p.Triggers) != len(want) {
		t.Fatalf("%d triggers", len(p.Triggers))
	}
	for _, tr := range p.Triggers {
		w := want[tr.Name]
		if tr.Namespace != "shop" || tr.Group != "knative-trigger-shop-"+tr.Name || tr.Topic != "knative-broker-shop-"+w.Broker || tr.MaxInFlight != 100 {
			t.Errorf("%s: namespace %s group %s topic %s max in flight %d", tr.Name, tr.Namespace, tr.Group, tr.Topic, tr.MaxInFlight)
		}
		if tr.Broker != w.Broker || tr.Target != w.Target || tr.DeadLetter != w.DeadLetter || !samePolicy(tr.Policy, w.Policy) ||
			tr.Ordered != w.Ordered || tr.ByKey != w.ByKey || !reflect.DeepEqual(tr.Attributes, w.Attributes) {
			t.Errorf("%s:\n got  %+v\n want %+v", tr.Name, tr, w)
		}
	}
	if f := p.Triggers[1].Filters; len(f) != 1 || len(f[0].Any) != 2 || f[0].Any[0].Prefix["type"] != "order." || f[0].Any[1].CESQL == "" {
		t.Errorf("to-sink filters %+v", f)
	}
}

// TestBrokerPlaneRefused: what the engine cannot run is refused with a
// reason, never dropped.
func TestBrokerPlaneRefused(t *testing.T) {
	cases := map[string]struct {
		change func(*manifest.Topology)
		reason string
	}{
		"class": {func(tp *manifest.Topology) {
			tp.Brokers[0].Annotations[manifest.AnnotationBrokerClass] = "MTChannelBasedBroker"
		}, "the engine runs Kafka brokers only"},
		"no partitions":      {func(tp *manifest.Topology) { delete(tp.ConfigMaps[0].Data, manifest.KeyTopicPartitions) }, "default.topic.partitions"},
		"unknown broker":     {func(tp *manifest.Topology) { tp.Triggers[0].Spec.Broker = "nope" }, `no Broker "nope"`},
		"cross-namespace":    {func(tp *manifest.Topology) { tp.Triggers[2].Spec.BrokerRef.Namespace = "elsewhere" }, "another namespace"},
		"unknown subscriber": {func(tp *manifest.Topology) { tp.Triggers[0].Spec.Subscriber.Ref.Name = "nope" }, `no function "nope"`},
		"subscriber kind":    {func(tp *manifest.Topology) { tp.Triggers[0].Spec.Subscriber.Ref.Kind = "InMemoryChannel" }, "InMemoryChannel"},
		"empty exact":        {func(tp *manifest.Topology) { tp.Triggers[1].Spec.Filters[0].Any[0].Prefix["type"] = "" }, "spec.filters[0]: any: spec.filters[0]"},
		"order": {func(tp *manifest.Topology) {
			tp.Triggers[0].Annotations = map[string]string{manifest.AnnotationDeliveryOrder: "sorted"}
		}, "Allowed values"},
		"key and ordered": {func(tp *manifest.Topology) { tp.Triggers[2].Annotations[manifest.AnnotationDeliveryOrder] = "ordered" }, "contradict"},
		"schedule":        {func(tp *manifest.Topology) { tp.PingSources[0].Spec.Schedule = "@every 1m" }, "@every"},
		"timezone":        {func(tp *manifest.Topology) { tp.PingSources[0].Spec.Timezone = "Mars/Olympus" }, "timezone"},
		"ping data":       {func(tp *manifest.Topology) { tp.PingSources[0].Spec.Data = "[1]" }, "JSON object"},
		"ping sink":       {func(tp *manifest.Topology) { tp.PingSources[0].Spec.Sink.Ref.Name = "nope" }, `no Broker "nope"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			topo := loadFixture(t)
			c.change(topo)
			_, err := buildFixture(t, topo)
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("want a refusal saying %q, got %v", c.reason, err)
			}
		})
	}
}

// TestSelectKeepsBrokerPlane: triggers and pings to a function left out
// are left out with it; the others stay.
func TestSelectKeepsBrokerPlane(t *testing.T) {
	topo := loadFixture(t)
	topo.Functions = append(topo.Functions, manifest.Function{Name: "other", Runtime: "go"})
	if err := plan.Select(topo, []string{"other"}); err != nil {
		t.Fatal(err)
	}
	if len(topo.Triggers) != 3 || len(topo.PingSources) != 1 || len(topo.Brokers) != 2 {
		t.Errorf("%d triggers, %d pings, %d brokers", len(topo.Triggers), len(topo.PingSources), len(topo.Brokers))
	}
	if _, err := buildFixture(t, topo); err != nil {
		t.Error(err)
	}
}

func samePolicy(a, b delivery.Policy) bool {
	return a.Retry == b.Retry && a.Backoff == b.Backoff && a.Delay == b.Delay && a.Timeout == b.Timeout
}

// TestRepositoryBrokerPlane: the repository's Broker, Trigger and
// PingSource as the engine runs them.
func TestRepositoryBrokerPlane(t *testing.T) {
	topo := load(t)
	at := addresses(topo)
	at.BrokerIngress = brokerIngress
	p, err := plan.Build(topo, plan.Settings{Namespace: "jobflow"}, at)
	if err != nil {
		t.Fatal(err)
	}
	// The jobs domain's broker plane; other domains' brokers, triggers and
	// pings have their own tests.
	var br *plan.Broker
	for i := range p.Brokers {
		if p.Brokers[i].Name == "jobflow" {
			br = &p.Brokers[i]
		}
	}
	if br == nil || br.Topic != "knative-broker-jobflow-jobflow" || br.Partitions != 4 ||
		br.URL != "http://"+brokerIngress+"/jobflow/jobflow" {
		t.Fatalf("brokers %+v", p.Brokers)
	}
	found := false
	for _, tp := range p.Topics {
		found = found || tp.Name == "knative-broker-jobflow-jobflow" && tp.Partitions == 4
	}
	if !found {
		t.Error("the broker's topic is not created")
	}
	var tr plan.Trigger
	for _, x := range p.Triggers {
		if x.Name == "job-requests" {
			tr = x
		}
	}
	if tr.Name != "job-requests" || tr.Group != "knative-trigger-jobflow-job-requests" || tr.Topic != "knative-broker-jobflow-jobflow" ||
		tr.Target != "http://"+at.Functions["receiver"] || tr.DeadLetter != "http://"+ingress+"/jobflow/dead-letter-sink" ||
		tr.Ordered || tr.ByKey || tr.Policy.Retry != 10 || tr.Policy.Delay != 200*time.Millisecond || tr.Policy.Timeout != 30*time.Second ||
		len(tr.Filters) != 1 || tr.Filters[0].Exact["type"] != "dev.jobflow.job.requested" {
		t.Errorf("trigger %+v", tr)
	}
	pings := map[string]string{}
	for _, ping := range p.Pings {
		pings[ping.Name] = ping.Sink
	}
	if pings["heartbeat"] != "http://"+brokerIngress+"/jobflow/jobflow" || pings["config-poll"] != "http://"+at.Functions["config-source"]+"/sync" {
		t.Errorf("pings %+v", p.Pings)
	}
}
