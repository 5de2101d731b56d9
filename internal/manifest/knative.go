package manifest

import (
	"context"
	"fmt"
	"strings"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"
)

// knativeObject is a Knative type the webhook defaults and validates.
type knativeObject interface {
	apis.Defaultable
	apis.Validatable
}

// webhookContext is the context Knative's webhooks validate a new object
// in: the default feature flags, "in create".
func webhookContext() context.Context {
	ctx := context.Background()
	ctx = feature.ToContext(ctx, feature.FromContextOrDefaults(ctx))
	return apis.WithinCreate(ctx)
}

// knativeCheck decodes raw into Knative's own Go type of kind (Trigger,
// PingSource, Broker), defaults and validates it as the cluster's webhook
// would, so that what the engine refuses is what the cluster refuses.
// Other kinds pass.
func knativeCheck(kind string, raw []byte) error {
	var o knativeObject
	switch kind {
	case KindTrigger:
		o = &eventingv1.Trigger{}
	case KindPingSource:
		o = &sourcesv1.PingSource{}
	case KindBroker:
		o = &eventingv1.Broker{}
	default:
		return nil
	}
	if err := yaml.Unmarshal(raw, o); err != nil {
		return err
	}
	ctx := webhookContext()
	o.SetDefaults(ctx)
	if fe := o.Validate(ctx); fe != nil {
		// Warnings (e.g. a deprecated field) do not stop a cluster either.
		if errs := fe.Filter(apis.ErrorLevel); errs != nil {
			return fmt.Errorf("knative validation: %s", flatten(errs))
		}
	}
	return nil
}

// flatten is the field errors on one line.
func flatten(fe *apis.FieldError) string {
	return strings.ReplaceAll(strings.TrimSpace(fe.Error()), "\n", "; ")
}
