package manifests

import (
	"time"

	"knative.dev/eventing-kafka-broker/control-plane/pkg/contract"
	coreconfig "knative.dev/eventing-kafka-broker/control-plane/pkg/core/config"
	duckv1 "knative.dev/eventing/pkg/apis/duck/v1"
)

// Delivery is what the Kafka data plane is told about retries, as the
// control plane's EgressConfigFromDelivery computes it.
type Delivery struct {
	Retry   int
	Backoff string // linear | exponential
	Delay   time.Duration
	Timeout time.Duration // 0: the data plane's default
}

// DataPlaneDefaults is what the Kafka data plane does for a KafkaSource
// with no delivery spec (no egress config): Knative's defaults.
var DataPlaneDefaults = Delivery{Retry: 10, Backoff: "exponential", Delay: 300 * time.Millisecond, Timeout: 600 * time.Second}

// defaultBackoffDelayMs is the control plane's default backoff delay when
// retry is set and backoffDelay is not (the source reconciler's).
const defaultBackoffDelayMs = 200

// DataPlaneDelivery converts d as the Kafka control plane does for the data
// plane: with retry unset nothing is retried; durations are ISO-8601.
func DataPlaneDelivery(d *duckv1.DeliverySpec) (Delivery, error) {
	if d == nil || (d.DeadLetterSink == nil && d.Retry == nil && d.Timeout == nil) {
		return DataPlaneDefaults, nil
	}
	var out Delivery
	if d.Retry != nil {
		out.Retry = int(*d.Retry)
		ms, err := coreconfig.DurationMillisFromISO8601String(d.BackoffDelay, defaultBackoffDelayMs)
		if err != nil {
			return out, err
		}
		out.Delay = time.Duration(ms) * time.Millisecond
		out.Backoff = "exponential"
		if coreconfig.BackoffPolicyFromString(d.BackoffPolicy) == contract.BackoffPolicy_Linear {
			out.Backoff = "linear"
		}
	}
	if d.Timeout != nil {
		ms, err := coreconfig.DurationMillisFromISO8601String(d.Timeout, 0)
		if err != nil {
			return out, err
		}
		out.Timeout = time.Duration(ms) * time.Millisecond
	}
	return out, nil
}
