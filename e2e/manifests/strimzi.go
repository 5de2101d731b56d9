package manifests

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Strimzi publishes no Go module with its API types or CRDs that can be
// fetched here, so its kinds are decoded strictly into the subset of the
// kafka.strimzi.io/v1beta2 API (Strimzi 0.45) that the manifests may use:
// a field outside that subset fails the check instead of passing unseen.

type strimziObject interface{ validate() error }

var strimziKinds = map[string]func() strimziObject{
	"kafka.strimzi.io/v1beta2, Kind=Kafka":         func() strimziObject { return &Kafka{} },
	"kafka.strimzi.io/v1beta2, Kind=KafkaNodePool": func() strimziObject { return &KafkaNodePool{} },
	"kafka.strimzi.io/v1beta2, Kind=KafkaTopic":    func() strimziObject { return &KafkaTopic{} },
}

// StrimziMeta is the metadata the Strimzi manifests use.
type StrimziMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ClusterLabel ties node pools and topics to their Kafka cluster.
const ClusterLabel = "strimzi.io/cluster"

// Kafka is kafka.strimzi.io/v1beta2 Kafka (KRaft with node pools).
type Kafka struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   StrimziMeta `json:"metadata"`
	Spec       struct {
		Kafka struct {
			Version         string            `json:"version"`
			MetadataVersion string            `json:"metadataVersion,omitempty"`
			Listeners       []KafkaListener   `json:"listeners"`
			Config          map[string]any    `json:"config,omitempty"`
			Resources       map[string]any    `json:"resources,omitempty"`
			Template        map[string]any    `json:"template,omitempty"`
			Storage         map[string]any    `json:"storage,omitempty"`
			Replicas        *int32            `json:"replicas,omitempty"`
			Rack            map[string]string `json:"rack,omitempty"`
		} `json:"kafka"`
		EntityOperator *struct {
			TopicOperator *map[string]any `json:"topicOperator,omitempty"`
			UserOperator  *map[string]any `json:"userOperator,omitempty"`
		} `json:"entityOperator,omitempty"`
	} `json:"spec"`
}

// KafkaListener is one listener of a Kafka cluster.
type KafkaListener struct {
	Name string `json:"name"`
	Port int32  `json:"port"`
	Type string `json:"type"`
	TLS  bool   `json:"tls"`
}

// Bootstrap is the in-cluster bootstrap address of the plain internal
// listener: <cluster>-kafka-bootstrap.<namespace>.svc:<port>.
func (k *Kafka) Bootstrap() (string, error) {
	for _, l := range k.Spec.Kafka.Listeners {
		if l.Type == "internal" && !l.TLS {
			return fmt.Sprintf("%s-kafka-bootstrap.%s.svc:%d", k.Metadata.Name, k.Metadata.Namespace, l.Port), nil
		}
	}
	return "", fmt.Errorf("kafka %s: no plain internal listener", k.Metadata.Name)
}

func (k *Kafka) validate() error {
	var errs []error
	if k.Metadata.Annotations["strimzi.io/node-pools"] != "enabled" || k.Metadata.Annotations["strimzi.io/kraft"] != "enabled" {
		errs = append(errs, errors.New("annotations strimzi.io/node-pools and strimzi.io/kraft must be enabled (KRaft with node pools)"))
	}
	if k.Spec.Kafka.Version == "" {
		errs = append(errs, errors.New("spec.kafka.version is required"))
	}
	if k.Spec.Kafka.Replicas != nil || k.Spec.Kafka.Storage != nil {
		errs = append(errs, errors.New("spec.kafka.replicas and spec.kafka.storage belong in the KafkaNodePool"))
	}
	if len(k.Spec.Kafka.Listeners) == 0 {
		errs = append(errs, errors.New("spec.kafka.listeners is required"))
	}
	names := map[string]bool{}
	for _, l := range k.Spec.Kafka.Listeners {
		if names[l.Name] {
			errs = append(errs, fmt.Errorf("listener %q twice", l.Name))
		}
		names[l.Name] = true
		if !slices.Contains([]string{"internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"}, l.Type) {
			errs = append(errs, fmt.Errorf("listener %q: type %q", l.Name, l.Type))
		}
		if l.Port < 9092 || l.Port > 65535 {
			errs = append(errs, fmt.Errorf("listener %q: port %d (Strimzi wants 9092 or above)", l.Name, l.Port))
		}
	}
	if _, err := k.Bootstrap(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// KafkaNodePool is kafka.strimzi.io/v1beta2 KafkaNodePool.
type KafkaNodePool struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   StrimziMeta `json:"metadata"`
	Spec       struct {
		Replicas  int32          `json:"replicas"`
		Roles     []string       `json:"roles"`
		Storage   map[string]any `json:"storage"`
		Resources map[string]any `json:"resources,omitempty"`
		Template  map[string]any `json:"template,omitempty"`
	} `json:"spec"`
}

func (p *KafkaNodePool) validate() error {
	var errs []error
	if p.Metadata.Labels[ClusterLabel] == "" {
		errs = append(errs, fmt.Errorf("label %s is required", ClusterLabel))
	}
	if p.Spec.Replicas < 1 {
		errs = append(errs, errors.New("spec.replicas must be at least 1"))
	}
	if len(p.Spec.Roles) == 0 {
		errs = append(errs, errors.New("spec.roles is required"))
	}
	for _, r := range p.Spec.Roles {
		if r != "controller" && r != "broker" {
			errs = append(errs, fmt.Errorf("role %q: want controller or broker", r))
		}
	}
	if t, _ := p.Spec.Storage["type"].(string); !slices.Contains([]string{"ephemeral", "persistent-claim", "jbod"}, t) {
		errs = append(errs, fmt.Errorf("spec.storage.type %q: want ephemeral, persistent-claim or jbod", t))
	}
	return errors.Join(errs...)
}

// KafkaTopic is kafka.strimzi.io/v1beta2 KafkaTopic.
type KafkaTopic struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   StrimziMeta `json:"metadata"`
	Spec       struct {
		TopicName  string            `json:"topicName,omitempty"`
		Partitions int32             `json:"partitions"`
		Replicas   int32             `json:"replicas"`
		Config     map[string]string `json:"config,omitempty"`
	} `json:"spec"`
}

// Name is the Kafka topic's name: spec.topicName, else metadata.name.
func (t *KafkaTopic) Name() string {
	if t.Spec.TopicName != "" {
		return t.Spec.TopicName
	}
	return t.Metadata.Name
}

// numericTopicConfigs are topic configs that must be integers.
var numericTopicConfigs = []string{"retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "min.insync.replicas", "max.message.bytes"}

func (t *KafkaTopic) validate() error {
	var errs []error
	if t.Metadata.Labels[ClusterLabel] == "" {
		errs = append(errs, fmt.Errorf("label %s is required", ClusterLabel))
	}
	if t.Spec.Partitions < 1 || t.Spec.Replicas < 1 {
		errs = append(errs, errors.New("spec.partitions and spec.replicas must be at least 1"))
	}
	for k, v := range t.Spec.Config {
		if slices.Contains(numericTopicConfigs, k) {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				errs = append(errs, fmt.Errorf("config %s=%q: not an integer", k, v))
			}
		}
		if strings.TrimSpace(k) != k || k == "" {
			errs = append(errs, fmt.Errorf("config key %q", k))
		}
	}
	if _, ok := t.Spec.Config["retention.ms"]; !ok {
		errs = append(errs, errors.New("config retention.ms is required (every stage topic has a retention)"))
	}
	return errors.Join(errs...)
}
