package plan

import (
	"fmt"

	"go.uber.org/zap"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
)

// checkFilters refuses a spec.filters entry that knative.dev/eventing's
// filter packages would skip at run time (an empty exact, prefix or suffix
// value, which the webhook lets through): on a cluster such a filter
// silently matches everything; here it is refused with a reason.
func checkFilters(fs []eventingv1.SubscriptionsAPIFilter) error {
	for i, f := range fs {
		if err := checkFilter(f); err != nil {
			return fmt.Errorf("spec.filters[%d]: %w", i, err)
		}
	}
	return nil
}

func checkFilter(f eventingv1.SubscriptionsAPIFilter) error {
	m := subscriptionsapi.MaterializeSubscriptionsAPIFilter(zap.NewNop(), f)
	if m == nil {
		return fmt.Errorf("%+v: knative's filter packages cannot build it (an empty attribute name or value?)", f)
	}
	m.Cleanup()
	if err := checkFilters(f.All); err != nil {
		return fmt.Errorf("all: %w", err)
	}
	if err := checkFilters(f.Any); err != nil {
		return fmt.Errorf("any: %w", err)
	}
	if f.Not != nil {
		if err := checkFilter(*f.Not); err != nil {
			return fmt.Errorf("not: %w", err)
		}
	}
	return nil
}
