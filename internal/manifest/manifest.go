// Package manifest reads the Kubernetes manifests in triggers/, sinks/ and
// brokers/ and the functions' func.yaml files: the same files a cluster
// applies. It decodes only the fields the local engine acts on; strict
// validation against Knative's own types lives in the e2e module's tests.
package manifest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kinds the engine acts on.
const (
	KindKafkaSource = "KafkaSource"
	KindKafkaSink   = "KafkaSink"
	KindSinkBinding = "SinkBinding"
	KindKafkaTopic  = "KafkaTopic"
	KindService     = "Service"
	KindDeployment  = "Deployment"
)

// Annotations the engine reads.
const (
	// AnnotationDeliveryOrder is Knative's ordered | unordered switch.
	AnnotationDeliveryOrder = "kafka.eventing.knative.dev/delivery.order"
	// AnnotationMaxInFlight caps unordered deliveries in flight per source
	// (jobflow's own knob; Knative has none per source).
	AnnotationMaxInFlight = "jobflow.dev/delivery.max-in-flight"
	// AnnotationBatchSize lets an unordered source send up to this many
	// waiting records in one request, as a CloudEvents batch (jobflow's own
	// knob, local engine only; Knative sends one event per request).
	AnnotationBatchSize = "jobflow.dev/delivery.batch-size"
	// AnnotationLocalPort is the port a function's activator listens on
	// in the local engine (func.yaml deploy.annotations; a cluster ignores it).
	AnnotationLocalPort = "jobflow.dev/local-port"
	// AnnotationLocalHint is printed under a function's URL when the local
	// engine is up; {url} in it becomes the function's URL.
	AnnotationLocalHint = "jobflow.dev/local-hint"
	// AnnotationAfter names functions (comma-separated) an adapter needs
	// running before it starts, e.g. because they create its tables.
	AnnotationAfter = "jobflow.dev/after"
)

// Meta is object metadata.
type Meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// KReference names another object.
type KReference struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
}

// Destination is Knative's duckv1.Destination: a ref, a URI, or a ref and
// a URI path relative to it.
type Destination struct {
	Ref *KReference `json:"ref,omitempty"`
	URI string      `json:"uri,omitempty"`
}

// Delivery is Knative's duckv1.DeliverySpec.
type Delivery struct {
	DeadLetterSink *Destination `json:"deadLetterSink,omitempty"`
	Retry          *int32       `json:"retry,omitempty"`
	BackoffPolicy  *string      `json:"backoffPolicy,omitempty"`
	BackoffDelay   *string      `json:"backoffDelay,omitempty"`
	Timeout        *string      `json:"timeout,omitempty"`
}

// KafkaSource is sources.knative.dev/v1 KafkaSource.
type KafkaSource struct {
	Meta `json:"metadata"`
	Spec struct {
		BootstrapServers []string    `json:"bootstrapServers"`
		Topics           []string    `json:"topics"`
		ConsumerGroup    string      `json:"consumerGroup"`
		InitialOffset    string      `json:"initialOffset,omitempty"`
		Consumers        *int32      `json:"consumers,omitempty"`
		Ordering         string      `json:"ordering,omitempty"`
		Delivery         *Delivery   `json:"delivery,omitempty"`
		Sink             Destination `json:"sink"`
	} `json:"spec"`
}

// Ordered reports the delivery order: spec.ordering, else the older
// annotation, else ordered (Knative's default).
func (s KafkaSource) Ordered() bool {
	if s.Spec.Ordering != "" {
		return s.Spec.Ordering != "unordered"
	}
	return s.Annotations[AnnotationDeliveryOrder] != "unordered"
}

// Order is a KafkaSource's delivery order: Ordered, or by key with
// jobflow.dev/delivery.order: key (the records of one key in order, keys of
// a partition in parallel), which takes the place of Knative's default
// (ordered) but contradicts an ordering asked for explicitly.
func (s KafkaSource) Order() (ordered, byKey bool, err error) {
	v, ok := s.Annotations[AnnotationJobflowOrder]
	if !ok {
		return s.Ordered(), false, nil
	}
	if v != OrderKey {
		return false, false, fmt.Errorf("kafkasource %s: %s %q: the one value is %q", s.Name, AnnotationJobflowOrder, v, OrderKey)
	}
	if s.Spec.Ordering == "ordered" || strings.ToLower(s.Annotations[AnnotationDeliveryOrder]) == "ordered" {
		return false, false, fmt.Errorf("kafkasource %s: %s: %s and ordering: ordered contradict each other", s.Name, AnnotationJobflowOrder, OrderKey)
	}
	return false, true, nil
}

// MaxInFlight is the cap on unordered deliveries in flight (default 100).
func (s KafkaSource) MaxInFlight() (int, error) {
	return s.positive(AnnotationMaxInFlight, 100)
}

// positive is the positive integer of annotation name, or def when unset.
func (s KafkaSource) positive(name string, def int) (int, error) {
	v, ok := s.Annotations[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("kafkasource %s: %s %q: want a positive integer", s.Name, name, v)
	}
	return n, nil
}

// BatchSize is the most records sent in one request (default 1: one event
// per request); more than 1 needs unordered delivery.
func (s KafkaSource) BatchSize() (int, error) {
	n, err := s.positive(AnnotationBatchSize, 1)
	if err != nil {
		return 0, err
	}
	if n > 1 && s.Ordered() {
		return 0, fmt.Errorf("kafkasource %s: %s %d needs unordered delivery (spec.ordering: unordered)", s.Name, AnnotationBatchSize, n)
	}
	return n, nil
}

// KafkaSink is eventing.knative.dev/v1alpha1 KafkaSink.
type KafkaSink struct {
	Meta `json:"metadata"`
	Spec struct {
		Topic            string   `json:"topic"`
		BootstrapServers []string `json:"bootstrapServers"`
		ContentMode      string   `json:"contentMode,omitempty"`
	} `json:"spec"`
}

// Structured reports whether the sink writes structured-mode records.
func (s KafkaSink) Structured() bool { return s.Spec.ContentMode == "structured" }

// SinkBinding is sources.knative.dev/v1 SinkBinding: it injects K_SINK
// into its subject.
type SinkBinding struct {
	Meta `json:"metadata"`
	Spec struct {
		Subject KReference  `json:"subject"`
		Sink    Destination `json:"sink"`
	} `json:"spec"`
}

// Topic is a Strimzi KafkaTopic.
type Topic struct {
	Meta `json:"metadata"`
	Spec struct {
		TopicName  string            `json:"topicName,omitempty"`
		Partitions int32             `json:"partitions"`
		Replicas   int32             `json:"replicas"`
		Config     map[string]string `json:"config,omitempty"`
	} `json:"spec"`
}

// TopicName is spec.topicName, else metadata.name.
func (t Topic) TopicName() string {
	if t.Spec.TopicName != "" {
		return t.Spec.TopicName
	}
	return t.Name
}

// Function is what the engine reads of a func.yaml.
type Function struct {
	Dir     string `json:"-"`
	Name    string `json:"name"`
	Runtime string `json:"runtime"`
	Invoke  string `json:"invoke"`
	Run     struct {
		Envs []EnvVar `json:"envs,omitempty"`
	} `json:"run"`
	Deploy struct {
		Namespace   string            `json:"namespace,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"deploy"`
}

// EnvVar is one func.yaml env entry.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Document is one YAML document of a manifest file.
type Document struct {
	File       string
	APIVersion string
	Kind       string
	Name       string
	Raw        []byte
}

// Topology is everything read from a repository.
type Topology struct {
	Sources   []KafkaSource
	Sinks     []KafkaSink
	Bindings  []SinkBinding
	Topics    []Topic
	Functions []Function
	// Adapters are long-running processes (adapters/), never scaled.
	Adapters []Deployment
	// The Broker plane: Kafka-class Brokers with their ConfigMaps, their
	// Triggers, and PingSources.
	Brokers     []Broker
	ConfigMaps  []ConfigMap
	Triggers    []Trigger
	PingSources []PingSource
	// Documents holds every manifest document, including kinds the engine ignores.
	Documents []Document
}

// Load reads root/brokers, root/sinks, root/triggers, root/adapters and
// root/functions/*/func.yaml.
func Load(root string) (*Topology, error) {
	t := &Topology{}
	for _, dir := range []string{"brokers", "sinks", "triggers", "adapters"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			if err := t.addFile(f); err != nil {
				return nil, err
			}
		}
	}
	funcs, err := filepath.Glob(filepath.Join(root, "functions", "*", "func.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(funcs)
	for _, f := range funcs {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var fn Function
		if err := yaml.Unmarshal(b, &fn); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		fn.Dir = filepath.Dir(f)
		if fn.Name == "" {
			return nil, fmt.Errorf("%s: no name", f)
		}
		t.Functions = append(t.Functions, fn)
	}
	return t, t.check()
}

// SplitDocuments splits a multi-document YAML file.
func SplitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, part := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(part))) > 0 {
			docs = append(docs, part)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func (t *Topology) addFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for i, raw := range SplitDocuments(b) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   Meta   `json:"metadata"`
		}
		if err := yaml.Unmarshal(raw, &head); err != nil {
			return fmt.Errorf("%s document %d: %w", file, i+1, err)
		}
		if head.Kind == "" || head.Metadata.Name == "" {
			return fmt.Errorf("%s document %d: kind and metadata.name are required", file, i+1)
		}
		t.Documents = append(t.Documents, Document{File: file, APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Raw: raw})
		var target any
		switch head.Kind {
		case KindKafkaSource:
			t.Sources = append(t.Sources, KafkaSource{})
			target = &t.Sources[len(t.Sources)-1]
		case KindKafkaSink:
			t.Sinks = append(t.Sinks, KafkaSink{})
			target = &t.Sinks[len(t.Sinks)-1]
		case KindSinkBinding:
			t.Bindings = append(t.Bindings, SinkBinding{})
			target = &t.Bindings[len(t.Bindings)-1]
		case KindKafkaTopic:
			t.Topics = append(t.Topics, Topic{})
			target = &t.Topics[len(t.Topics)-1]
		case KindDeployment:
			t.Adapters = append(t.Adapters, Deployment{})
			target = &t.Adapters[len(t.Adapters)-1]
		case KindBroker, KindTrigger, KindPingSource, KindConfigMap:
			if target, err = t.addEventing(head.Kind, raw); err != nil {
				return fmt.Errorf("%s %s/%s: %w", file, head.Kind, head.Metadata.Name, err)
			}
		default:
			continue
		}
		if err := yaml.Unmarshal(raw, target); err != nil {
			return fmt.Errorf("%s %s/%s: %w", file, head.Kind, head.Metadata.Name, err)
		}
	}
	return nil
}

// check verifies the references the engine follows.
func (t *Topology) check() error {
	var errs []string
	for _, s := range t.Sources {
		if len(s.Spec.Topics) == 0 || s.Spec.ConsumerGroup == "" {
			errs = append(errs, fmt.Sprintf("kafkasource %s: topics and consumerGroup are required", s.Name))
		}
		if _, err := t.Target(s.Spec.Sink); err != nil {
			errs = append(errs, fmt.Sprintf("kafkasource %s sink: %v", s.Name, err))
		}
		if d := s.Spec.Delivery; d != nil && d.DeadLetterSink != nil {
			if _, err := t.Target(*d.DeadLetterSink); err != nil {
				errs = append(errs, fmt.Sprintf("kafkasource %s deadLetterSink: %v", s.Name, err))
			}
		}
		if _, err := s.MaxInFlight(); err != nil {
			errs = append(errs, err.Error())
		}
		if _, err := s.BatchSize(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, b := range t.Bindings {
		if b.Spec.Subject.Kind != KindService || t.Function(b.Spec.Subject.Name) == nil {
			errs = append(errs, fmt.Sprintf("sinkbinding %s: subject must be the Service of a function in functions/", b.Name))
		}
		if _, err := t.Target(b.Spec.Sink); err != nil {
			errs = append(errs, fmt.Sprintf("sinkbinding %s sink: %v", b.Name, err))
		}
	}
	for _, d := range t.Adapters {
		if _, err := d.Container(); err != nil {
			errs = append(errs, err.Error())
		}
		for _, n := range d.After() {
			if t.Function(n) == nil {
				errs = append(errs, fmt.Sprintf("deployment %s: %s: no function %q in functions/", d.Name, AnnotationAfter, n))
			}
		}
	}
	errs = append(errs, t.checkEventing()...)
	if len(errs) > 0 {
		return fmt.Errorf("manifests: %s", strings.Join(errs, "; "))
	}
	return nil
}
