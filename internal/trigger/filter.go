// Package trigger is what makes a KafkaSource dispatcher a Broker Trigger's:
// its filter, evaluated by knative.dev/eventing's own filter packages so that
// a filter means here what it means on a cluster, and the replier that puts a
// subscriber's reply back into the broker's topic.
package trigger

import (
	"context"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/attributes"
)

// Filter is a Trigger's filter: spec.filters (the SubscriptionsAPI
// dialects: exact, prefix, suffix, all, any, not, cesql) when it has any,
// else spec.filter.attributes (exact match; an empty value matches any
// value of an attribute that is present), else everything passes, as in
// knative.dev/eventing's broker filter.
type Filter struct {
	f    eventfilter.Filter
	rule headerRule // the same filter on a record's headers (headers.go)
}

// NewFilter builds a Trigger's filter. Close it when the trigger stops
// (knative's filters may hold resources; ours run no goroutine). Match may
// be called from many goroutines.
func NewFilter(attrs map[string]string, filters []eventingv1.SubscriptionsAPIFilter) *Filter {
	switch {
	case len(filters) > 0:
		// eventing's CreateSubscriptionsAPIFilters, without its racy all
		// filter (materialize.go).
		return &Filter{f: allOf(materializeList(filters)), rule: newHeaderRule(attrs, filters)}
	case attrs != nil:
		return &Filter{f: attributes.NewAttributesFilter(attrs), rule: newHeaderRule(attrs, filters)}
	}
	return &Filter{}
}

// Match reports whether e passes: only a failed filter drops an event.
func (f *Filter) Match(ctx context.Context, e *event.Event) bool {
	return f.f == nil || f.f.Filter(ctx, *e) != eventfilter.FailFilter
}

// Rejects reports whether the record with these headers is a valid
// binary-mode CloudEvent that Match would surely refuse, telling from the
// headers alone (headers.go). False means only Match on the event can tell.
func (f *Filter) Rejects(headers []*sarama.RecordHeader) bool {
	if f.rule == nil {
		return false
	}
	h, ok := binaryHeaders(headers)
	if !ok {
		return false
	}
	v := f.rule.screen(h)
	return v.known && v.res == eventfilter.FailFilter
}

// Close frees what the filter runs; Match must not be called after it.
func (f *Filter) Close() {
	if f.f != nil {
		f.f.Cleanup()
	}
}
