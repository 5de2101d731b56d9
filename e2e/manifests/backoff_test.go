package manifests

import (
	"testing"

	duckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/eventing/pkg/kncloudevents"

	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// TestBackoffIsKnativesFormula checks the local engine's retry waits
// against knative.dev/eventing's own code: RetryConfigFromDeliverySpec's
// Backoff(n) is the wait before retry n in Knative's Kafka data plane
// (which serves KafkaSource); Knative's Go dispatcher calls it from 0.
func TestBackoffIsKnativesFormula(t *testing.T) {
	for _, policy := range []duckv1.BackoffPolicyType{duckv1.BackoffPolicyExponential, duckv1.BackoffPolicyLinear} {
		for _, delay := range []string{"PT0.2S", "PT0.3S", "PT1S", "PT0.15S", "PT2.25S"} {
			retry := int32(10)
			spec := duckv1.DeliverySpec{Retry: &retry, BackoffPolicy: &policy, BackoffDelay: &delay}
			kn, err := kncloudevents.RetryConfigFromDeliverySpec(spec)
			if err != nil {
				t.Fatal(err)
			}
			p := string(policy)
			ours, err := manifest.DeliveryPolicy(&manifest.Delivery{Retry: &retry, BackoffPolicy: &p, BackoffDelay: &delay})
			if err != nil {
				t.Fatal(err)
			}
			if ours.Retry != kn.RetryMax {
				t.Fatalf("%s %s: retry %d, knative %d", policy, delay, ours.Retry, kn.RetryMax)
			}
			for n := 1; n <= 10; n++ {
				if got, want := ours.Wait(n), kn.Backoff(n, nil); got != want {
					t.Errorf("%s %s retry %d: engine waits %s, knative's formula %s", policy, delay, n, got, want)
				}
			}
		}
	}
}

// TestSubTenthDelayIsRefused: Knative truncates backoffDelay to tenths of a
// second, so PT0.05S means no backoff at all there; the engine refuses it.
func TestSubTenthDelayIsRefused(t *testing.T) {
	retry, policy, delay := int32(3), duckv1.BackoffPolicyLinear, "PT0.05S"
	kn, err := kncloudevents.RetryConfigFromDeliverySpec(duckv1.DeliverySpec{Retry: &retry, BackoffPolicy: &policy, BackoffDelay: &delay})
	if err != nil || kn.Backoff(1, nil) != 0 {
		t.Fatalf("knative's formula changed: %v %v", kn.Backoff(1, nil), err)
	}
	if _, err := delivery.ParseDuration(delay); err == nil {
		t.Fatal("the engine must refuse a delay that truncates to zero")
	}
}
