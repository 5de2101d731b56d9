package trigger

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
)

// materialize is knative.dev/eventing's MaterializeSubscriptionsAPIFilter
// (the same dialect precedence: exact, prefix, suffix, all, any, not,
// cesql; an invalid expression is nil, skipped by its list) over its own
// leaf filters, except for all and any: eventing's run a goroutine that
// reorders their children by how often each decides, and their Filter
// reads the children's counters while that goroutine updates them (a data
// race the race detector reports). Ours evaluate the children in order,
// with the same results: all fails at the first failure, any passes at
// the first pass, else the last child's result (NoFilter for none).
func materialize(f eventingv1.SubscriptionsAPIFilter) eventfilter.Filter {
	var leaf eventfilter.Filter
	var err error
	switch {
	case len(f.Exact) > 0:
		leaf, err = subscriptionsapi.NewExactFilter(f.Exact)
	case len(f.Prefix) > 0:
		leaf, err = subscriptionsapi.NewPrefixFilter(f.Prefix)
	case len(f.Suffix) > 0:
		leaf, err = subscriptionsapi.NewSuffixFilter(f.Suffix)
	case len(f.All) > 0:
		return allOf(materializeList(f.All))
	case len(f.Any) > 0:
		return anyOf(materializeList(f.Any))
	case f.Not != nil:
		inner := materialize(*f.Not)
		return notOf{subscriptionsapi.NewNotFilter(inner), inner}
	case f.CESQL != "":
		leaf, err = subscriptionsapi.NewCESQLFilter(f.CESQL)
	}
	if err != nil {
		return nil
	}
	return leaf
}

// materializeList materializes filters, skipping those that are invalid.
func materializeList(filters []eventingv1.SubscriptionsAPIFilter) []eventfilter.Filter {
	out := make([]eventfilter.Filter, 0, len(filters))
	for _, f := range filters {
		if m := materialize(f); m != nil {
			out = append(out, m)
		}
	}
	return out
}

// allOf passes when no child fails.
type allOf []eventfilter.Filter

func (a allOf) Filter(ctx context.Context, e event.Event) eventfilter.FilterResult {
	res := eventfilter.NoFilter
	for _, f := range a {
		if res = f.Filter(ctx, e); res == eventfilter.FailFilter {
			return res
		}
	}
	return res
}

func (a allOf) Cleanup() { cleanup(a) }

// anyOf passes when a child passes.
type anyOf []eventfilter.Filter

func (a anyOf) Filter(ctx context.Context, e event.Event) eventfilter.FilterResult {
	res := eventfilter.NoFilter
	for _, f := range a {
		if res = f.Filter(ctx, e); res == eventfilter.PassFilter {
			return res
		}
	}
	return res
}

func (a anyOf) Cleanup() { cleanup(a) }

func cleanup(filters []eventfilter.Filter) {
	for _, f := range filters {
		f.Cleanup()
	}
}

// notOf is eventing's not filter, whose Cleanup panics when what it negates
// is invalid (nil; its Filter answers NoFilter then, so it stays in its list).
type notOf struct {
	not, inner eventfilter.Filter
}

func (n notOf) Filter(ctx context.Context, e event.Event) eventfilter.FilterResult {
	return n.not.Filter(ctx, e)
}

func (n notOf) Cleanup() {
	if n.inner != nil {
		n.inner.Cleanup()
	}
}
