package manifest

import (
	"fmt"
)

// addEventing appends a new object of a Broker-plane kind, first checked
// with Knative's own type (knativeCheck), and returns where to decode it.
func (t *Topology) addEventing(kind string, raw []byte) (any, error) {
	if err := knativeCheck(kind, raw); err != nil {
		return nil, err
	}
	switch kind {
	case KindBroker:
		t.Brokers = append(t.Brokers, Broker{})
		return &t.Brokers[len(t.Brokers)-1], nil
	case KindTrigger:
		t.Triggers = append(t.Triggers, Trigger{})
		return &t.Triggers[len(t.Triggers)-1], nil
	case KindPingSource:
		t.PingSources = append(t.PingSources, PingSource{})
		return &t.PingSources[len(t.PingSources)-1], nil
	}
	t.ConfigMaps = append(t.ConfigMaps, ConfigMap{})
	return &t.ConfigMaps[len(t.ConfigMaps)-1], nil
}

// checkEventing verifies what the engine needs to run the Broker plane:
// Kafka-class brokers with a config, triggers on a broker of theirs with
// a subscriber it can reach, and PingSources' sinks.
func (t *Topology) checkEventing() []string {
	var errs []string
	for _, b := range t.Brokers {
		if c := b.Class(); c != BrokerClassKafka {
			errs = append(errs, fmt.Sprintf("broker %s: class %q (annotation %s): the engine runs %s brokers only", b.Name, c, AnnotationBrokerClass, BrokerClassKafka))
		}
		if _, err := t.BrokerTopic(b); err != nil {
			errs = append(errs, fmt.Sprintf("broker %s: %v", b.Name, err))
		}
		errs = append(errs, t.deadLetterErrors("broker "+b.Name, b.Spec.Delivery)...)
	}
	for _, tr := range t.Triggers {
		if _, err := t.TriggerBroker(tr); err != nil {
			errs = append(errs, fmt.Sprintf("trigger %s: %v", tr.Name, err))
		}
		if _, err := t.Target(tr.Spec.Subscriber); err != nil {
			errs = append(errs, fmt.Sprintf("trigger %s subscriber: %v", tr.Name, err))
		}
		errs = append(errs, t.deadLetterErrors("trigger "+tr.Name, tr.Spec.Delivery)...)
		if _, _, err := tr.Order(); err != nil {
			errs = append(errs, err.Error())
		}
		if _, err := tr.MaxInFlight(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, p := range t.PingSources {
		if _, err := t.Target(p.Spec.Sink); err != nil {
			errs = append(errs, fmt.Sprintf("pingsource %s sink: %v", p.Name, err))
		}
	}
	return errs
}

func (t *Topology) deadLetterErrors(what string, d *Delivery) []string {
	if d == nil || d.DeadLetterSink == nil {
		return nil
	}
	if _, err := t.Target(*d.DeadLetterSink); err != nil {
		return []string{fmt.Sprintf("%s deadLetterSink: %v", what, err)}
	}
	return nil
}

// TriggerBroker is the Broker of tr: spec.broker, or spec.brokerRef in
// the trigger's own namespace (the engine runs no cross-namespace links).
func (t *Topology) TriggerBroker(tr Trigger) (*Broker, error) {
	name := tr.Spec.Broker
	if ref := tr.Spec.BrokerRef; ref != nil {
		if ref.Namespace != "" && ref.Namespace != tr.Namespace {
			return nil, fmt.Errorf("brokerRef %s/%s: a broker in another namespace (cross-namespace event links) is not run by the engine", ref.Namespace, ref.Name)
		}
		name = ref.Name
	}
	b := t.Broker(name)
	if b == nil {
		return nil, fmt.Errorf("no Broker %q in brokers/", name)
	}
	if b.Namespace != tr.Namespace {
		return nil, fmt.Errorf("broker %s is in namespace %q, the trigger in %q", name, b.Namespace, tr.Namespace)
	}
	return b, nil
}
