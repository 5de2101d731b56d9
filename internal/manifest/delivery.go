package manifest

import (
	"fmt"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// DeliveryPolicy is the retry policy of a delivery spec, parsed over
// delivery.Defaults (Knative's); nil is the defaults. Durations are
// ISO-8601 (PT0.5S), parsed by the library Knative uses.
func DeliveryPolicy(d *Delivery) (delivery.Policy, error) {
	p := delivery.Defaults
	if d == nil {
		return p, nil
	}
	var err error
	if d.Retry != nil {
		if *d.Retry < 0 {
			return p, fmt.Errorf("retry %d: must not be negative", *d.Retry)
		}
		p.Retry = int(*d.Retry)
	}
	if d.BackoffPolicy != nil {
		if p.Backoff, err = delivery.ParseBackoff(*d.BackoffPolicy); err != nil {
			return p, err
		}
	}
	if d.BackoffDelay != nil {
		if p.Delay, err = delivery.ParseDuration(*d.BackoffDelay); err != nil {
			return p, fmt.Errorf("backoffDelay: %w", err)
		}
	}
	if d.Timeout != nil {
		if p.Timeout, err = delivery.ParseDuration(*d.Timeout); err != nil {
			return p, fmt.Errorf("timeout: %w", err)
		}
	}
	return p, nil
}
