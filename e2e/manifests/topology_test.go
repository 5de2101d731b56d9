package manifests

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kafkasinks "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1alpha1"
	kafkasources "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1"
	"knative.dev/eventing-kafka-broker/control-plane/pkg/receiver"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/network"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/manifest"
)

// The host and namespace of the Kafka data plane's KafkaSink ingress in a
// release install of Knative Eventing Kafka.
const (
	sinkIngressService   = "kafka-sink-ingress"
	knativeEventingNS    = "knative-eventing"
	servingAPIVersion    = "serving.knative.dev/v1"
	kafkaSinkAPIVersion  = "eventing.knative.dev/v1alpha1"
	kafkaSinkKind        = "KafkaSink"
	knativeServiceKind   = "Service"
	topologyCheckedKinds = "KafkaSource, KafkaSink, SinkBinding, KafkaTopic, Broker, Trigger, PingSource"
)

// cluster is the topology as Knative's own types read it.
type cluster struct {
	kafka    *Kafka
	pools    []*KafkaNodePool
	topics   map[string]*KafkaTopic // by Kafka topic name
	sources  map[string]*kafkasources.KafkaSource
	sinks    map[string]*kafkasinks.KafkaSink
	bindings map[string]*sourcesv1.SinkBinding
	brokers  map[string]*eventingv1.Broker
	triggers map[string]*eventingv1.Trigger
	pings    map[string]*sourcesv1.PingSource
	// configMaps by namespace/name
	configMaps map[string]*corev1.ConfigMap
	funcs      map[string]*FuncYAML
}

func loadCluster(t *testing.T, root string, topo *manifest.Topology) *cluster {
	t.Helper()
	set := crds(t)
	ctx := Context()
	c := &cluster{
		topics: map[string]*KafkaTopic{}, sources: map[string]*kafkasources.KafkaSource{},
		sinks: map[string]*kafkasinks.KafkaSink{}, bindings: map[string]*sourcesv1.SinkBinding{},
		brokers: map[string]*eventingv1.Broker{}, triggers: map[string]*eventingv1.Trigger{}, pings: map[string]*sourcesv1.PingSource{},
		funcs: map[string]*FuncYAML{}, configMaps: map[string]*corev1.ConfigMap{},
	}
	for _, d := range topo.Documents {
		o, err := Decode(ctx, set, d.Raw)
		if err != nil {
			t.Fatalf("%s: %v (TestManifests says more)", d.File, err)
		}
		switch v := o.Value.(type) {
		case *Kafka:
			if c.kafka != nil {
				t.Fatalf("two Kafka clusters: %s and %s", c.kafka.Metadata.Name, v.Metadata.Name)
			}
			c.kafka = v
		case *KafkaNodePool:
			c.pools = append(c.pools, v)
		case *KafkaTopic:
			if c.topics[v.Name()] != nil {
				t.Errorf("topic %s declared twice", v.Name())
			}
			c.topics[v.Name()] = v
		case *kafkasources.KafkaSource:
			c.sources[v.Name] = v
		case *kafkasinks.KafkaSink:
			c.sinks[v.Name] = v
		case *sourcesv1.SinkBinding:
			c.bindings[v.Name] = v
		case *eventingv1.Broker:
			c.brokers[v.Name] = v
		case *eventingv1.Trigger:
			c.triggers[v.Name] = v
		case *sourcesv1.PingSource:
			c.pings[v.Name] = v
		case *corev1.ConfigMap:
			c.configMaps[v.Namespace+"/"+v.Name] = v
		}
	}
	if c.kafka == nil {
		t.Fatal("no Kafka cluster in brokers/")
	}
	schema, err := FuncSchema()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "functions", "*", "func.yaml"))
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fy, _ := CheckFuncYAML(schema, b, filepath.Base(filepath.Dir(f))) // TestFuncYAML reports problems
		c.funcs[fy.Name] = fy
	}
	return c
}

// TestTopologyMatchesEngine loads the manifests twice, with Knative's Go
// types (what a cluster runs) and with internal/manifest (what the local
// engine runs), and checks that both describe the same pipeline: the same
// sources, topics, consumer groups, ordering, delivery, sinks and K_SINK
// wiring, on the same Kafka cluster.
func TestTopologyMatchesEngine(t *testing.T) {
	r := root(t)
	topo, err := manifest.Load(r)
	if err != nil {
		t.Fatalf("manifest.Load: %v", err)
	}
	c := loadCluster(t, r, topo)
	bootstrap, err := c.kafka.Bootstrap()
	if err != nil {
		t.Fatal(err)
	}

	// Both readers see the same objects.
	sameNames(t, "KafkaSource", keys(c.sources), names(topo.Sources, func(s manifest.KafkaSource) string { return s.Name }))
	sameNames(t, "KafkaSink", keys(c.sinks), names(topo.Sinks, func(s manifest.KafkaSink) string { return s.Name }))
	sameNames(t, "SinkBinding", keys(c.bindings), names(topo.Bindings, func(s manifest.SinkBinding) string { return s.Name }))
	sameNames(t, "KafkaTopic", keys(c.topics), names(topo.Topics, func(s manifest.Topic) string { return s.TopicName() }))
	sameNames(t, "function", keys(c.funcs), names(topo.Functions, func(f manifest.Function) string { return f.Name }))

	sameNames(t, "Broker", keys(c.brokers), names(topo.Brokers, func(b manifest.Broker) string { return b.Name }))
	sameNames(t, "Trigger", keys(c.triggers), names(topo.Triggers, func(tr manifest.Trigger) string { return tr.Name }))
	sameNames(t, "PingSource", keys(c.pings), names(topo.PingSources, func(p manifest.PingSource) string { return p.Name }))

	// Brokers, Triggers and PingSources as the engine's plan runs them.
	checkBrokerPlane(t, c, topo)

	for name, b := range c.brokers {
		t.Run("broker/"+name, func(t *testing.T) {
			if cls := b.Annotations[eventingv1.BrokerClassAnnotationKey]; cls != "Kafka" {
				t.Errorf("class %q: want Kafka", cls)
			}
			cfg := b.Spec.Config
			if cfg == nil || cfg.Kind != "ConfigMap" {
				t.Fatalf("spec.config: want the Kafka broker ConfigMap")
			}
			cm := c.configMaps[cfg.Namespace+"/"+cfg.Name]
			if cm == nil {
				t.Fatalf("spec.config: no ConfigMap %s/%s in brokers/", cfg.Namespace, cfg.Name)
			}
			if got := cm.Data["bootstrap.servers"]; got != bootstrap {
				t.Errorf("ConfigMap %s bootstrap.servers %q, Kafka %s", cm.Name, got, bootstrap)
			}
			if d := b.Spec.Delivery; d != nil && d.DeadLetterSink != nil && (d.DeadLetterSink.Ref == nil || c.sinks[d.DeadLetterSink.Ref.Name] == nil) {
				t.Errorf("deadLetterSink: no KafkaSink %+v in sinks/", d.DeadLetterSink)
			}
		})
	}

	t.Run("kafka", func(t *testing.T) {
		brokers := int32(0)
		for _, p := range c.pools {
			if p.Metadata.Labels[ClusterLabel] != c.kafka.Metadata.Name || p.Metadata.Namespace != c.kafka.Metadata.Namespace {
				t.Errorf("node pool %s: not in Kafka %s/%s", p.Metadata.Name, c.kafka.Metadata.Namespace, c.kafka.Metadata.Name)
			}
			if slices.Contains(p.Spec.Roles, "broker") {
				brokers += p.Spec.Replicas
			}
		}
		if brokers == 0 {
			t.Error("no node pool with the broker role")
		}
		for name, kt := range c.topics {
			if kt.Metadata.Labels[ClusterLabel] != c.kafka.Metadata.Name || kt.Metadata.Namespace != c.kafka.Metadata.Namespace {
				t.Errorf("topic %s: the topic operator of Kafka %s/%s does not watch it", name, c.kafka.Metadata.Namespace, c.kafka.Metadata.Name)
			}
			if kt.Spec.Replicas > brokers {
				t.Errorf("topic %s: %d replicas on %d brokers", name, kt.Spec.Replicas, brokers)
			}
			et := engineTopic(topo, name)
			if et.Spec.Partitions != kt.Spec.Partitions || et.Spec.Replicas != kt.Spec.Replicas || fmt.Sprint(et.Spec.Config) != fmt.Sprint(kt.Spec.Config) {
				t.Errorf("topic %s: engine reads %d partitions %v, cluster %d partitions %v", name, et.Spec.Partitions, et.Spec.Config, kt.Spec.Partitions, kt.Spec.Config)
			}
		}
	})

	groups := map[string]string{}
	for _, es := range topo.Sources {
		ks := c.sources[es.Name]
		if ks == nil {
			continue
		}
		t.Run("source/"+es.Name, func(t *testing.T) {
			sp := ks.Spec
			if !slices.Equal(sp.Topics, es.Spec.Topics) {
				t.Errorf("topics: cluster %v, engine %v", sp.Topics, es.Spec.Topics)
			}
			for _, tp := range sp.Topics {
				if c.topics[tp] == nil {
					t.Errorf("topic %s: no KafkaTopic in brokers/ (the cluster would not create it)", tp)
				}
			}
			if sp.ConsumerGroup != es.Spec.ConsumerGroup {
				t.Errorf("consumerGroup: cluster %q, engine %q", sp.ConsumerGroup, es.Spec.ConsumerGroup)
			}
			if other, ok := groups[sp.ConsumerGroup]; ok {
				t.Errorf("consumer group %s is also %s's", sp.ConsumerGroup, other)
			}
			groups[sp.ConsumerGroup] = es.Name
			if string(sp.InitialOffset) != es.Spec.InitialOffset {
				t.Errorf("initialOffset: cluster %q (after defaults), engine %q: set it in the manifest", sp.InitialOffset, es.Spec.InitialOffset)
			}
			consumers := int32(1)
			if es.Spec.Consumers != nil {
				consumers = *es.Spec.Consumers
			}
			if *sp.Consumers != consumers {
				t.Errorf("consumers: cluster %d, engine %d", *sp.Consumers, consumers)
			}
			if ordered := *sp.Ordering == kafkasources.Ordered; ordered != es.Ordered() {
				t.Errorf("ordering: cluster %s (spec.ordering, after defaults), engine ordered=%v (annotation %s=%q)",
					*sp.Ordering, es.Ordered(), manifest.AnnotationDeliveryOrder, es.Annotations[manifest.AnnotationDeliveryOrder])
			}
			if !slices.Equal(sp.BootstrapServers, []string{bootstrap}) || !slices.Equal(es.Spec.BootstrapServers, []string{bootstrap}) {
				t.Errorf("bootstrapServers: cluster %v, engine %v, Kafka %s", sp.BootstrapServers, es.Spec.BootstrapServers, bootstrap)
			}
			if ks.Namespace == "" || ks.Namespace != es.Namespace {
				t.Errorf("namespace: cluster %q, engine %q", ks.Namespace, es.Namespace)
			}

			// Delivery: what the Kafka control plane tells the data plane
			// equals the policy the engine's dispatcher runs.
			dp, err := DataPlaneDelivery(sp.Delivery)
			if err != nil {
				t.Fatalf("delivery: %v", err)
			}
			ep, err := manifest.DeliveryPolicy(es.Spec.Delivery)
			if err != nil {
				t.Fatalf("engine delivery: %v", err)
			}
			if dp.Retry != ep.Retry || (dp.Retry > 0 && (dp.Backoff != ep.Backoff || dp.Delay != ep.Delay)) || !sameTimeout(dp.Timeout, ep.Timeout) {
				t.Errorf("delivery: data plane %+v, engine %+v", dp, ep)
			}

			// The sink is the function's Knative Service; the engine
			// delivers to the same function.
			ref := sp.Sink.Ref
			et, err := topo.Target(es.Spec.Sink)
			switch {
			case ref == nil:
				t.Errorf("sink: not a ref (a URI sink is not a function of this repository)")
			case err != nil:
				t.Errorf("sink: engine: %v", err)
			case ref.APIVersion != servingAPIVersion || ref.Kind != knativeServiceKind:
				t.Errorf("sink: %s %s, want a %s Service (kn func deploy makes one)", ref.APIVersion, ref.Kind, servingAPIVersion)
			case ref.Name != et.Function || sp.Sink.URI != nil && sp.Sink.URI.Path != et.Path:
				t.Errorf("sink: cluster %s, engine function %q path %q", ref.Name, et.Function, et.Path)
			case c.funcs[ref.Name] == nil:
				t.Errorf("sink: no functions/%s", ref.Name)
			case c.funcs[ref.Name].Deploy.Namespace != ks.Namespace || (ref.Namespace != "" && ref.Namespace != ks.Namespace):
				t.Errorf("sink: function %s deploys to namespace %q, the source is in %q", ref.Name, c.funcs[ref.Name].Deploy.Namespace, ks.Namespace)
			}

			// The dead-letter sink is a KafkaSink both resolve alike.
			if sp.Delivery != nil && sp.Delivery.DeadLetterSink != nil {
				dls := sp.Delivery.DeadLetterSink.Ref
				et, err := topo.Target(*es.Spec.Delivery.DeadLetterSink)
				switch {
				case dls == nil || dls.Kind != kafkaSinkKind || dls.APIVersion != kafkaSinkAPIVersion:
					t.Errorf("deadLetterSink: want a %s KafkaSink ref", kafkaSinkAPIVersion)
				case err != nil || et.Sink != dls.Name:
					t.Errorf("deadLetterSink: cluster %s, engine %+v (%v)", dls.Name, et, err)
				case c.sinks[dls.Name] == nil:
					t.Errorf("deadLetterSink: no KafkaSink %s", dls.Name)
				}
			}
		})
	}

	for _, es := range topo.Sinks {
		ks := c.sinks[es.Name]
		if ks == nil {
			continue
		}
		t.Run("sink/"+es.Name, func(t *testing.T) {
			if ks.Spec.Topic != es.Spec.Topic {
				t.Errorf("topic: cluster %q, engine %q", ks.Spec.Topic, es.Spec.Topic)
			}
			if c.topics[ks.Spec.Topic] == nil && ks.Spec.NumPartitions == nil {
				t.Errorf("topic %s: no KafkaTopic in brokers/ and no numPartitions to create it", ks.Spec.Topic)
			}
			if structured := *ks.Spec.ContentMode == kafkasinks.ModeStructured; structured != es.Structured() {
				t.Errorf("contentMode: cluster %s (after defaults), engine structured=%v", *ks.Spec.ContentMode, es.Structured())
			}
			if !slices.Equal(ks.Spec.BootstrapServers, []string{bootstrap}) || !slices.Equal(es.Spec.BootstrapServers, []string{bootstrap}) {
				t.Errorf("bootstrapServers: cluster %v, engine %v, Kafka %s", ks.Spec.BootstrapServers, es.Spec.BootstrapServers, bootstrap)
			}
		})
	}

	// K_SINK wiring, function by function.
	ingressHost := network.GetServiceHostname(sinkIngressService, knativeEventingNS)
	if ingressHost != engine.ClusterSinkHost {
		t.Errorf("engine.ClusterSinkHost %q, the Kafka data plane's ingress is %q", engine.ClusterSinkHost, ingressHost)
	}
	sinkURL := func(name string) string {
		return receiver.HTTPAddress(ingressHost, nil, c.sinks[name]).URL.String()
	}
	subjects := map[string]string{}
	for name, b := range c.bindings {
		t.Run("binding/"+name, func(t *testing.T) {
			subj := b.Spec.Subject
			if subj.APIVersion != servingAPIVersion || subj.Kind != knativeServiceKind || subj.Name == "" || subj.Selector != nil {
				t.Fatalf("subject: %s %s %q: want a %s Service by name", subj.APIVersion, subj.Kind, subj.Name, servingAPIVersion)
			}
			if other, ok := subjects[subj.Name]; ok {
				t.Errorf("function %s has two SinkBindings (%s, %s): one K_SINK only", subj.Name, other, name)
			}
			subjects[subj.Name] = name
			f := c.funcs[subj.Name]
			if f == nil {
				t.Fatalf("subject: no functions/%s", subj.Name)
			}
			if f.Deploy.Namespace != b.Namespace || (subj.Namespace != "" && subj.Namespace != b.Namespace) {
				t.Errorf("function %s deploys to %q, the binding is in %q", subj.Name, f.Deploy.Namespace, b.Namespace)
			}
			ref := b.Spec.Sink.Ref
			eb := topo.BindingFor(subj.Name)
			if eb == nil {
				t.Fatalf("engine: no binding for %s", subj.Name)
			}
			// A Broker of brokers/ (its ingress; the saga's decisions go
			// there): the engine's K_SINK is its broker ingress.
			if ref != nil && ref.Kind == "Broker" && ref.APIVersion == "eventing.knative.dev/v1" {
				if c.brokers[ref.Name] == nil || (ref.Namespace != "" && ref.Namespace != b.Namespace) {
					t.Fatalf("sink: no Broker %s in namespace %s in brokers/", ref.Name, b.Namespace)
				}
				if et, err := topo.Target(eb.Spec.Sink); err != nil || et.Broker != ref.Name || et.Path != "" {
					t.Errorf("engine K_SINK of %s: %+v (%v), cluster: Broker %s", subj.Name, et, err, ref.Name)
				}
				return
			}
			if ref == nil || ref.Kind != kafkaSinkKind || ref.APIVersion != kafkaSinkAPIVersion || c.sinks[ref.Name] == nil {
				t.Fatalf("sink: want a KafkaSink of sinks/ or a Broker of brokers/, got %+v", b.Spec.Sink)
			}
			et, err := topo.Target(eb.Spec.Sink)
			if err != nil || et.Sink != ref.Name || et.Path != "" {
				t.Errorf("engine K_SINK of %s: %+v (%v), cluster: KafkaSink %s", subj.Name, et, err, ref.Name)
			}
			t.Logf("%s: K_SINK=%s", subj.Name, sinkURL(ref.Name))
		})
	}

	// Named outputs (K_SINK_<NAME>) are KafkaSink addresses; the engine
	// rewrites exactly these to its own ingress.
	for name, f := range c.funcs {
		for _, e := range f.Run.Envs {
			if !strings.HasPrefix(e.Name, "K_SINK_") {
				continue
			}
			found := ""
			for sn := range c.sinks {
				if e.Value == sinkURL(sn) {
					found = sn
				}
			}
			if found == "" {
				t.Errorf("function %s: %s=%q is not the address of a KafkaSink in sinks/", name, e.Name, e.Value)
			} else if c.sinks[found].Namespace != f.Deploy.Namespace {
				t.Errorf("function %s: %s points into namespace %s", name, e.Name, c.sinks[found].Namespace)
			}
		}
	}

	// Every CloudEvent function is fed by a KafkaSource or a Trigger.
	fed := map[string]bool{}
	for _, s := range c.sources {
		if s.Spec.Sink.Ref != nil {
			fed[s.Spec.Sink.Ref.Name] = true
		}
	}
	for _, tr := range c.triggers {
		if r := tr.Spec.Subscriber.Ref; r != nil && r.Kind == knativeServiceKind {
			fed[r.Name] = true
		}
	}
	for name, f := range c.funcs {
		if f.Invoke == "cloudevent" && !fed[name] {
			t.Errorf("function %s takes CloudEvents but no KafkaSource or Trigger delivers to it", name)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%d sources, %d sinks, %d bindings, %d topics, %d functions agree (%s)", len(c.sources), len(c.sinks), len(c.bindings), len(c.topics), len(c.funcs), topologyCheckedKinds)
}

// sameTimeout compares the data plane's timeout (0: its default) with the
// engine's.
func sameTimeout(dataPlane, eng time.Duration) bool {
	if dataPlane == 0 {
		dataPlane = DataPlaneDefaults.Timeout
	}
	return dataPlane == eng
}

func engineTopic(topo *manifest.Topology, name string) manifest.Topic {
	for _, t := range topo.Topics {
		if t.TopicName() == name {
			return t
		}
	}
	return manifest.Topic{}
}

func names[T any](xs []T, name func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, name(x))
	}
	slices.Sort(out)
	return out
}

func sameNames(t *testing.T, kind string, clusterNames, engineNames []string) {
	t.Helper()
	if !slices.Equal(clusterNames, engineNames) {
		t.Errorf("%s: Knative types read %v, internal/manifest reads %v", kind, clusterNames, engineNames)
	}
}
