package plan

import (
	"fmt"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// ClusterBrokerHost is the host of Knative's Kafka Broker ingress on a
// cluster (/<namespace>/<broker>); URLs to it are rewritten to the
// engine's broker ingress.
const ClusterBrokerHost = "kafka-broker-ingress.knative-eventing.svc.cluster.local"

// Broker is one Kafka-class Broker: its topic and where its ingress takes
// events.
type Broker struct {
	Namespace, Name string
	Topic           string // knative-broker-<namespace>-<name>
	Partitions      int32
	Config          map[string]string // topic configs (default.topic.config.*)
	URL             string            // the local ingress: http://<broker ingress>/<namespace>/<name>
}

// Sink is the broker as its ingress serves it.
func (b Broker) Sink() kafkasink.Sink {
	return kafkasink.Sink{Namespace: b.Namespace, Name: b.Name, Topic: b.Topic}
}

// Trigger is one Trigger: a consumer group on its broker's topic that
// delivers the events its filter matches to its subscriber.
type Trigger struct {
	Name, Namespace string
	Broker          string
	Topic           string // the broker's
	Group           string // knative-trigger-<namespace>-<name>
	Ordered, ByKey  bool
	MaxInFlight     int
	// Policy is the trigger's delivery if it has one, else its broker's,
	// else Knative's defaults (a delivery replaces the broker's whole).
	Policy     delivery.Policy
	Target     string
	DeadLetter string // empty: none
	// Attributes and Filters are spec.filter.attributes and spec.filters,
	// as internal/trigger.NewFilter takes them.
	Attributes map[string]string
	Filters    []eventingv1.SubscriptionsAPIFilter
}

// BrokerTopic is Knative's name of a Kafka Broker's topic.
func BrokerTopic(namespace, name string) string { return "knative-broker-" + namespace + "-" + name }

// TriggerGroup is Knative's consumer group of a Kafka Broker's trigger.
func TriggerGroup(namespace, name string) string { return "knative-trigger-" + namespace + "-" + name }

func (r *resolver) brokerURL(namespace, name string) string {
	return "http://" + r.at.BrokerIngress + "/" + namespace + "/" + name
}

func buildBrokers(r *resolver) ([]Broker, []kafkabroker.TopicSpec, error) {
	var bs []Broker
	var topics []kafkabroker.TopicSpec
	for _, mb := range r.topo.Brokers {
		if c := mb.Class(); c != manifest.BrokerClassKafka {
			return nil, nil, fmt.Errorf("broker %s: class %q: the engine runs %s brokers only", mb.Name, c, manifest.BrokerClassKafka)
		}
		bt, err := r.topo.BrokerTopic(mb)
		if err != nil {
			return nil, nil, fmt.Errorf("broker %s: %w", mb.Name, err)
		}
		ns := r.ns(mb.Namespace)
		b := Broker{Namespace: ns, Name: mb.Name, Topic: BrokerTopic(ns, mb.Name), Partitions: bt.Partitions, Config: bt.Config, URL: r.brokerURL(ns, mb.Name)}
		bs = append(bs, b)
		topics = append(topics, kafkabroker.TopicSpec{Name: b.Topic, Partitions: b.Partitions, Config: b.Config})
	}
	return bs, topics, nil
}

func buildTriggers(r *resolver) ([]Trigger, error) {
	var ts []Trigger
	for _, mt := range r.topo.Triggers {
		t, err := buildTrigger(r, mt)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", mt.Name, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func buildTrigger(r *resolver, mt manifest.Trigger) (Trigger, error) {
	mb, err := r.topo.TriggerBroker(mt)
	if err != nil {
		return Trigger{}, err
	}
	d := mt.Spec.Delivery
	if d == nil {
		d = mb.Spec.Delivery // T24: any delivery of the trigger replaces the broker's
	}
	policy, err := manifest.DeliveryPolicy(d)
	if err != nil {
		return Trigger{}, fmt.Errorf("delivery: %w", err)
	}
	target, err := r.url(mt.Spec.Subscriber)
	if err != nil {
		return Trigger{}, fmt.Errorf("subscriber: %w", err)
	}
	var dls string
	if d != nil && d.DeadLetterSink != nil {
		if dls, err = r.url(*d.DeadLetterSink); err != nil {
			return Trigger{}, fmt.Errorf("deadLetterSink: %w", err)
		}
	}
	ordered, byKey, err := mt.Order()
	if err != nil {
		return Trigger{}, err
	}
	maxInFlight, err := mt.MaxInFlight()
	if err != nil {
		return Trigger{}, err
	}
	if err := checkFilters(mt.Spec.Filters); err != nil {
		return Trigger{}, err
	}
	ns := r.ns(mt.Namespace)
	return Trigger{
		Name: mt.Name, Namespace: ns, Broker: mb.Name,
		Topic: BrokerTopic(r.ns(mb.Namespace), mb.Name), Group: TriggerGroup(ns, mt.Name),
		Ordered: ordered, ByKey: byKey, MaxInFlight: maxInFlight,
		Policy: policy, Target: target, DeadLetter: dls,
		Attributes: mt.Attributes(), Filters: mt.Spec.Filters,
	}, nil
}
