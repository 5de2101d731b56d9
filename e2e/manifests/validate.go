// Package manifests checks the repository's Kubernetes manifests offline,
// the way a cluster would take them: each document is decoded strictly into
// the Go type of its kind (Knative's own types for KafkaSource, KafkaSink,
// SinkBinding, Broker and Trigger), defaulted and validated with that
// type's SetDefaults and Validate, and checked against the CRD schema the
// same Knative release installs.
package manifests

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kafkasinks "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1alpha1"
	kafkasources "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/jobflow/jobflow/e2e/internal/crdcheck"
	"github.com/jobflow/jobflow/e2e/internal/repo"
)

// Versions of the Knative modules whose types and CRDs the checks use;
// they must match e2e/go.mod (TestVersionsMatchGoMod checks it).
const (
	EventingVersion      = "v0.50.0"
	EventingKafkaVersion = "v0.49.2"
)

// CRDFiles are the CRD files, relative to their module, that hold the
// schemas of the Knative kinds the manifests use.
var CRDFiles = map[string][]string{
	"knative.dev/eventing": {
		"config/core/resources/broker.yaml",
		"config/core/resources/trigger.yaml",
		"config/core/resources/sinkbindings.yaml",
		"config/core/resources/pingsource.yaml",
	},
	"knative.dev/eventing-kafka-broker": {
		"control-plane/config/eventing-kafka-broker/100-source/100-kafka-source.yaml",
		"control-plane/config/eventing-kafka-broker/100-sink/100-kafka-sink.yaml",
	},
}

// LoadCRDs reads CRDFiles from the module cache.
func LoadCRDs() (crdcheck.Set, error) {
	var files []string
	for mod, rels := range CRDFiles {
		dir, err := repo.ModuleDir(mod, "")
		if err != nil {
			return nil, err
		}
		for _, r := range rels {
			files = append(files, filepath.Join(dir, filepath.FromSlash(r)))
		}
	}
	return crdcheck.LoadFiles(files...)
}

// Context is the context Knative's webhooks validate creates in: the
// default feature flags and "in create".
func Context() context.Context {
	ctx := context.Background()
	ctx = feature.ToContext(ctx, feature.FromContextOrDefaults(ctx))
	return apis.WithinCreate(ctx)
}

// Object is a decoded, defaulted and validated document.
type Object struct {
	APIVersion, Kind, Name, Namespace string
	// Value is a pointer to the decoded Go value (e.g. *kafkasources.KafkaSource).
	Value any
}

type validatable interface {
	apis.Defaultable
	apis.Validatable
}

// knativeKinds are the kinds checked with Knative's types and CRDs.
var knativeKinds = map[string]func() validatable{
	"sources.knative.dev/v1, Kind=KafkaSource":      func() validatable { return &kafkasources.KafkaSource{} },
	"eventing.knative.dev/v1alpha1, Kind=KafkaSink": func() validatable { return &kafkasinks.KafkaSink{} },
	"sources.knative.dev/v1, Kind=SinkBinding":      func() validatable { return &sourcesv1.SinkBinding{} },
	"eventing.knative.dev/v1, Kind=Broker":          func() validatable { return &eventingv1.Broker{} },
	"eventing.knative.dev/v1, Kind=Trigger":         func() validatable { return &eventingv1.Trigger{} },
	"sources.knative.dev/v1, Kind=PingSource":       func() validatable { return &sourcesv1.PingSource{} },
}

// Kinds lists every apiVersion and kind Decode accepts.
func Kinds() []string {
	var ks []string
	for k := range knativeKinds {
		ks = append(ks, k)
	}
	for k := range strimziKinds {
		ks = append(ks, k)
	}
	return append(ks, "v1, Kind=ConfigMap", "apps/v1, Kind=Deployment")
}

// Decode checks one YAML document and returns the decoded object. A kind
// it does not know is an error: every manifest the repository ships is
// checked.
func Decode(ctx context.Context, crds crdcheck.Set, raw []byte) (*Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	o := &Object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace}
	id := fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
	errs := metadataErrors(o)
	key := o.APIVersion + ", Kind=" + o.Kind
	switch {
	case knativeKinds[key] != nil:
		v := knativeKinds[key]()
		if err := crds.Validate(raw); err != nil {
			errs = append(errs, "CRD schema: "+err.Error())
		}
		if err := yaml.UnmarshalStrict(raw, v); err != nil {
			errs = append(errs, "strict decode: "+err.Error())
			break
		}
		v.SetDefaults(ctx)
		if fe := v.Validate(ctx); fe != nil {
			errs = append(errs, "Validate: "+flatten(fe))
		}
		if err := validateDelivery(ctx, v); err != nil {
			errs = append(errs, err.Error())
		}
		o.Value = v
	case strimziKinds[key] != nil:
		v := strimziKinds[key]()
		if err := yaml.UnmarshalStrict(raw, v); err != nil {
			errs = append(errs, "strict decode: "+err.Error())
			break
		}
		if err := v.validate(); err != nil {
			errs = append(errs, err.Error())
		}
		o.Value = v
	case key == "apps/v1, Kind=Deployment":
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(raw, &d); err != nil {
			errs = append(errs, "strict decode: "+err.Error())
			break
		}
		o.Value = &d
	case key == "v1, Kind=ConfigMap":
		var cm corev1.ConfigMap
		if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
			errs = append(errs, "strict decode: "+err.Error())
			break
		}
		for k := range cm.Data {
			for _, msg := range validation.IsConfigMapKey(k) {
				errs = append(errs, fmt.Sprintf("data key %q: %s", k, msg))
			}
		}
		o.Value = &cm
	default:
		errs = append(errs, fmt.Sprintf("no check for %s: add one to e2e/manifests (known: %s)", key, strings.Join(Kinds(), ", ")))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%s: %s", id, strings.Join(errs, "; "))
	}
	return o, nil
}

// metadataErrors checks an object's name and namespace as the API server does.
func metadataErrors(o *Object) []string {
	var errs []string
	for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
		errs = append(errs, "metadata.name: "+msg)
	}
	if o.Namespace == "" {
		return append(errs, "metadata.namespace: required (the manifests are applied without -n)")
	}
	for _, msg := range validation.IsDNS1123Label(o.Namespace) {
		errs = append(errs, "metadata.namespace: "+msg)
	}
	return errs
}

// validateDelivery validates delivery specs that the kind's own Validate
// leaves alone (KafkaSource's does not look at spec.delivery) with
// eventing's DeliverySpec.Validate, and parses them as the Kafka control
// plane does for the data plane.
func validateDelivery(ctx context.Context, v any) error {
	ks, ok := v.(*kafkasources.KafkaSource)
	if !ok || ks.Spec.Delivery == nil {
		return nil
	}
	if fe := ks.Spec.Delivery.Validate(ctx); fe != nil {
		return fmt.Errorf("spec.delivery: %s", flatten(fe))
	}
	if _, err := DataPlaneDelivery(ks.Spec.Delivery); err != nil {
		return fmt.Errorf("spec.delivery: %w", err)
	}
	return nil
}

func flatten(fe *apis.FieldError) string {
	return strings.Join(strings.Fields(fe.Error()), " ")
}
