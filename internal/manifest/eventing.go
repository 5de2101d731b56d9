package manifest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

// Kinds of Knative Eventing's Broker plane.
const (
	KindBroker     = "Broker"
	KindTrigger    = "Trigger"
	KindPingSource = "PingSource"
	KindConfigMap  = "ConfigMap"
)

// Broker plane annotations and ConfigMap keys.
const (
	// AnnotationBrokerClass is the Broker's class; the engine runs Kafka.
	AnnotationBrokerClass = "eventing.knative.dev/broker.class"
	// BrokerClassKafka is Knative's Kafka Broker class.
	BrokerClassKafka = "Kafka"
	// AnnotationJobflowOrder is jobflow's delivery order of a Trigger:
	// "key" keeps the events of one record key in order while different
	// keys of a partition go in parallel (knative/eventing#3188).
	AnnotationJobflowOrder = "jobflow.dev/delivery.order"
	// OrderKey is AnnotationJobflowOrder's one value.
	OrderKey = "key"
	// KeyTopicPartitions is the broker ConfigMap's partition count.
	KeyTopicPartitions = "default.topic.partitions"
	// KeyTopicConfigPrefix prefixes the broker ConfigMap's topic configs.
	KeyTopicConfigPrefix = "default.topic.config."
)

// ConfigMap is a v1 ConfigMap (a Kafka Broker's config).
type ConfigMap struct {
	Meta `json:"metadata"`
	Data map[string]string `json:"data,omitempty"`
}

// Broker is eventing.knative.dev/v1 Broker.
type Broker struct {
	Meta `json:"metadata"`
	Spec struct {
		Config   *KReference `json:"config,omitempty"`
		Delivery *Delivery   `json:"delivery,omitempty"`
	} `json:"spec"`
}

// Class is the broker's class annotation.
func (b Broker) Class() string { return b.Annotations[AnnotationBrokerClass] }

// Trigger is eventing.knative.dev/v1 Trigger. Its filters are
// knative.dev/eventing's own types, handed as they are to its filter
// packages (internal/trigger).
type Trigger struct {
	Meta `json:"metadata"`
	Spec struct {
		Broker    string      `json:"broker,omitempty"`
		BrokerRef *KReference `json:"brokerRef,omitempty"`
		Filter    *struct {
			Attributes map[string]string `json:"attributes,omitempty"`
		} `json:"filter,omitempty"`
		Filters    []eventingv1.SubscriptionsAPIFilter `json:"filters,omitempty"`
		Subscriber Destination                         `json:"subscriber"`
		Delivery   *Delivery                           `json:"delivery,omitempty"`
	} `json:"spec"`
}

// Attributes is spec.filter.attributes (nil: no attribute filter).
func (t Trigger) Attributes() map[string]string {
	if t.Spec.Filter == nil {
		return nil
	}
	return t.Spec.Filter.Attributes
}

// Order is a Trigger's delivery order: ordered (one event in flight per
// partition), by key (AnnotationJobflowOrder), else unordered (the Kafka
// Broker's default).
func (t Trigger) Order() (ordered, byKey bool, err error) {
	knative := strings.ToLower(t.Annotations[AnnotationDeliveryOrder])
	switch knative {
	case "", "unordered":
	case "ordered":
		ordered = true
	default:
		return false, false, fmt.Errorf("trigger %s: invalid annotation %s value: %s. Allowed values [ \"ordered\" | \"unordered\" ]", t.Name, AnnotationDeliveryOrder, knative)
	}
	v, ok := t.Annotations[AnnotationJobflowOrder]
	switch {
	case !ok:
		return ordered, false, nil
	case v != OrderKey:
		return false, false, fmt.Errorf("trigger %s: %s %q: the one value is %q", t.Name, AnnotationJobflowOrder, v, OrderKey)
	case ordered:
		return false, false, fmt.Errorf("trigger %s: %s: %s and %s: ordered contradict each other", t.Name, AnnotationJobflowOrder, OrderKey, AnnotationDeliveryOrder)
	}
	return false, true, nil
}

// MaxInFlight caps a Trigger's unordered deliveries in flight (default 100).
func (t Trigger) MaxInFlight() (int, error) {
	v, ok := t.Annotations[AnnotationMaxInFlight]
	if !ok {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("trigger %s: %s %q: want a positive integer", t.Name, AnnotationMaxInFlight, v)
	}
	return n, nil
}

// PingSource is sources.knative.dev/v1 PingSource.
type PingSource struct {
	Meta `json:"metadata"`
	Spec struct {
		Schedule    string      `json:"schedule,omitempty"`
		Timezone    string      `json:"timezone,omitempty"`
		ContentType string      `json:"contentType,omitempty"`
		Data        string      `json:"data,omitempty"`
		DataBase64  string      `json:"dataBase64,omitempty"`
		Sink        Destination `json:"sink"`
	} `json:"spec"`
}

// BrokerTopic is what a Kafka Broker's config gives its topic: the
// partitions and the topic configs (default.topic.config.<name>).
type BrokerTopic struct {
	Partitions int32
	Config     map[string]string
}

// BrokerTopic reads the ConfigMap of b's spec.config.
func (t *Topology) BrokerTopic(b Broker) (BrokerTopic, error) {
	ref := b.Spec.Config
	if ref == nil || ref.Kind != KindConfigMap {
		return BrokerTopic{}, fmt.Errorf("spec.config: want the ConfigMap of the Kafka broker's config")
	}
	cm := t.ConfigMap(ref.Namespace, ref.Name)
	if cm == nil {
		return BrokerTopic{}, fmt.Errorf("spec.config: no ConfigMap %s/%s in brokers/", ref.Namespace, ref.Name)
	}
	v := cm.Data[KeyTopicPartitions]
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return BrokerTopic{}, fmt.Errorf("ConfigMap %s: %s %q: want a positive integer", cm.Name, KeyTopicPartitions, v)
	}
	bt := BrokerTopic{Partitions: int32(n)}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, KeyTopicConfigPrefix); ok {
			if bt.Config == nil {
				bt.Config = map[string]string{}
			}
			bt.Config[name] = cm.Data[k]
		}
	}
	return bt, nil
}

// ConfigMap returns the ConfigMap namespace/name, or nil.
func (t *Topology) ConfigMap(namespace, name string) *ConfigMap {
	for i := range t.ConfigMaps {
		if c := &t.ConfigMaps[i]; c.Name == name && c.Namespace == namespace {
			return c
		}
	}
	return nil
}

// Broker returns the Broker named name, or nil.
func (t *Topology) Broker(name string) *Broker {
	for i := range t.Brokers {
		if t.Brokers[i].Name == name {
			return &t.Brokers[i]
		}
	}
	return nil
}
