package manifests

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	kafkafeatures "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/config"
	"knative.dev/eventing-kafka-broker/control-plane/pkg/receiver"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/network"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/manifest"
)

// Knative's Kafka Broker ingress service.
const brokerIngressService = "kafka-broker-ingress"

// enginePlan is the engine's plan of topo on made-up local addresses.
func enginePlan(t *testing.T, topo *manifest.Topology) (*plan.Plan, plan.Addresses) {
	t.Helper()
	at := plan.Addresses{Ingress: "127.0.0.1:8070", BrokerIngress: "127.0.0.1:8071", Functions: map[string]string{},
		Adapters: map[string]int{}, Postgres: "postgres://127.0.0.1/x", ClickHouse: "127.0.0.1:9000", Brokers: []string{"127.0.0.1:9092"}}
	for i, f := range topo.Functions {
		at.Functions[f.Name] = fmt.Sprintf("127.0.0.1:%d", 9100+i)
	}
	for i, a := range topo.Adapters {
		at.Adapters[a.Name] = 9200 + i
	}
	p, err := plan.Build(topo, plan.Settings{Namespace: "jobflow"}, at)
	if err != nil {
		t.Fatalf("the engine refuses the manifests: %v", err)
	}
	return p, at
}

// checkBrokerPlane checks that the engine runs each Broker, Trigger and
// PingSource as Knative's Kafka Broker and PingSource do on a cluster:
// the same topic, consumer group, filters, order, delivery, subscriber and
// schedule.
func checkBrokerPlane(t *testing.T, c *cluster, topo *manifest.Topology) {
	p, at := enginePlan(t, topo)
	host := network.GetServiceHostname(brokerIngressService, knativeEventingNS)
	if host != plan.ClusterBrokerHost {
		t.Errorf("plan.ClusterBrokerHost %q, the Kafka data plane's broker ingress is %q", plan.ClusterBrokerHost, host)
	}
	features := kafkafeatures.DefaultFeaturesConfig()
	for _, b := range p.Brokers {
		kb := c.brokers[b.Name]
		if kb == nil {
			continue
		}
		t.Run("plan/broker/"+b.Name, func(t *testing.T) {
			topic, err := features.ExecuteBrokersTopicTemplate(kb.ObjectMeta)
			if err != nil || topic != b.Topic {
				t.Errorf("topic: cluster %q (%v), engine %q", topic, err, b.Topic)
			}
			if path := receiver.Path(kb.Namespace, kb.Name); b.URL != "http://"+at.BrokerIngress+path {
				t.Errorf("ingress: engine %s, cluster path %s", b.URL, path)
			}
			cm := c.configMaps[kb.Spec.Config.Namespace+"/"+kb.Spec.Config.Name]
			if cm == nil || cm.Data[manifest.KeyTopicPartitions] != fmt.Sprint(b.Partitions) {
				t.Errorf("partitions: engine %d, ConfigMap %v", b.Partitions, cm)
			}
		})
	}
	for _, et := range p.Triggers {
		kt := c.triggers[et.Name]
		if kt == nil {
			continue
		}
		t.Run("plan/trigger/"+et.Name, func(t *testing.T) { checkTrigger(t, c, kt, et, at, features) })
	}
	for _, ep := range p.Pings {
		kp := c.pings[ep.Name]
		if kp == nil {
			continue
		}
		t.Run("plan/pingsource/"+ep.Name, func(t *testing.T) {
			s := kp.Spec
			if s.Schedule != ep.Schedule || s.Timezone != ep.Timezone || s.ContentType != ep.ContentType || s.Data != ep.Data || s.DataBase64 != ep.DataBase64 {
				t.Errorf("spec: cluster %+v, engine %+v", s, ep.Spec)
			}
			ref := s.Sink.Ref
			switch {
			case ref != nil && ref.Kind == "Service": // a function, at its activator (plus the sink's uri path)
				want := "http://" + at.Functions[ref.Name]
				if s.Sink.URI != nil {
					want += s.Sink.URI.Path
				}
				if at.Functions[ref.Name] == "" || ep.Sink != want {
					t.Errorf("sink: cluster %+v, engine %s, want %s", s.Sink, ep.Sink, want)
				}
			case ref == nil || ref.Kind != "Broker" || c.brokers[ref.Name] == nil ||
				ep.Sink != "http://"+at.BrokerIngress+receiver.Path(kp.Namespace, ref.Name):
				t.Errorf("sink: cluster %+v, engine %s", s.Sink, ep.Sink)
			}
		})
	}
}

func checkTrigger(t *testing.T, c *cluster, kt *eventingv1.Trigger, et plan.Trigger, at plan.Addresses, features *kafkafeatures.KafkaFeatureFlags) {
	group, err := features.ExecuteTriggersConsumerGroupTemplate(kt.ObjectMeta)
	if err != nil || group != et.Group {
		t.Errorf("consumer group: cluster %q (%v), engine %q", group, err, et.Group)
	}
	kb := c.brokers[kt.Spec.Broker]
	if kb == nil {
		t.Fatalf("broker %q: not in brokers/", kt.Spec.Broker)
	}
	if topic, _ := features.ExecuteBrokersTopicTemplate(kb.ObjectMeta); topic != et.Topic {
		t.Errorf("topic: cluster %q, engine %q", topic, et.Topic)
	}
	if ordered := strings.ToLower(kt.Annotations[manifest.AnnotationDeliveryOrder]) == "ordered"; ordered != et.Ordered {
		t.Errorf("order: cluster ordered=%v, engine %v", ordered, et.Ordered)
	}
	if !reflect.DeepEqual(kt.Spec.Filters, et.Filters) {
		t.Errorf("filters: cluster %+v, engine %+v", kt.Spec.Filters, et.Filters)
	}
	if attrs := map[string]string(kt.Spec.Filter.Attributes); len(attrs)+len(et.Attributes) > 0 && !reflect.DeepEqual(attrs, et.Attributes) {
		t.Errorf("filter.attributes: cluster %v, engine %v", attrs, et.Attributes)
	}
	// The Kafka control plane's delivery: the trigger's, else the broker's.
	d := kt.Spec.Delivery
	if d == nil {
		d = kb.Spec.Delivery
	}
	checkTriggerDelivery(t, c, d, et)
	ref := kt.Spec.Subscriber.Ref
	switch {
	case ref == nil:
		t.Errorf("subscriber: not a ref (a URI is not a function of this repository)")
	case ref.Kind != knativeServiceKind || ref.APIVersion != servingAPIVersion || c.funcs[ref.Name] == nil:
		t.Errorf("subscriber: %+v, want a function's Knative Service", ref)
	case et.Target != "http://"+at.Functions[ref.Name]:
		t.Errorf("subscriber: engine %s, cluster function %s", et.Target, ref.Name)
	}
}

func checkTriggerDelivery(t *testing.T, c *cluster, d *eventingduckv1.DeliverySpec, et plan.Trigger) {
	if d == nil {
		t.Errorf("no delivery on the trigger or its broker: the cluster's broker defaults decide it; set one")
		return
	}
	dp, err := DataPlaneDelivery(d)
	if err != nil {
		t.Fatalf("delivery: %v", err)
	}
	ep := et.Policy
	if dp.Retry != ep.Retry || (dp.Retry > 0 && (dp.Backoff != ep.Backoff || dp.Delay != ep.Delay)) || !sameTimeout(dp.Timeout, ep.Timeout) {
		t.Errorf("delivery: data plane %+v, engine %+v", dp, ep)
	}
	if dls := d.DeadLetterSink; dls != nil {
		if dls.Ref == nil || dls.Ref.Kind != kafkaSinkKind || c.sinks[dls.Ref.Name] == nil || !strings.HasSuffix(et.DeadLetter, "/"+dls.Ref.Name) {
			t.Errorf("deadLetterSink: cluster %+v, engine %s", dls, et.DeadLetter)
		}
	} else if et.DeadLetter != "" {
		t.Errorf("deadLetterSink: engine %s, cluster none", et.DeadLetter)
	}
}
