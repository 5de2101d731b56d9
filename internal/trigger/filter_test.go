package trigger

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

func testEvent(typ, source string, ext map[string]string) *event.Event {
	e := event.New()
	e.SetID("1")
	e.SetType(typ)
	e.SetSource(source)
	for k, v := range ext {
		e.SetExtension(k, v)
	}
	return &e
}

// TestNewFilterHasKnativeSemantics checks each dialect against what
// knative.dev/eventing's filters mean (spec T8, T9; the SubscriptionsAPI).
func TestNewFilterHasKnativeSemantics(t *testing.T) {
	created := testEvent("com.example.order.created", "/orders", map[string]string{"region": "eu"})
	paid := testEvent("com.example.order.paid", "/payments", map[string]string{"region": "us"})
	other := testEvent("com.other.thing", "/other", nil)
	events := []*event.Event{created, paid, other}
	exact := func(k, v string) eventingv1.SubscriptionsAPIFilter {
		return eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{k: v}}
	}
	for _, c := range []struct {
		name    string
		attrs   map[string]string
		filters []eventingv1.SubscriptionsAPIFilter
		want    []bool // created, paid, other
	}{
		{"no filter: everything (T9)", nil, nil, []bool{true, true, true}},
		{"attributes exact", map[string]string{"type": "com.example.order.created"}, nil, []bool{true, false, false}},
		{"attributes: an empty value needs the attribute present (T8)", map[string]string{"region": ""}, nil, []bool{true, true, false}},
		{"attributes: every key must match", map[string]string{"type": "com.example.order.paid", "region": "eu"}, nil, []bool{false, false, false}},
		{"exact", nil, []eventingv1.SubscriptionsAPIFilter{exact("type", "com.example.order.paid")}, []bool{false, true, false}},
		{"prefix", nil, []eventingv1.SubscriptionsAPIFilter{{Prefix: map[string]string{"type": "com.example."}}}, []bool{true, true, false}},
		{"suffix", nil, []eventingv1.SubscriptionsAPIFilter{{Suffix: map[string]string{"source": "ments"}}}, []bool{false, true, false}},
		{"all", nil, []eventingv1.SubscriptionsAPIFilter{{All: []eventingv1.SubscriptionsAPIFilter{exact("region", "eu"), exact("source", "/orders")}}}, []bool{true, false, false}},
		{"any", nil, []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{exact("region", "us"), exact("source", "/other")}}}, []bool{false, true, true}},
		{"not", nil, []eventingv1.SubscriptionsAPIFilter{{Not: &eventingv1.SubscriptionsAPIFilter{Prefix: map[string]string{"type": "com.example."}}}}, []bool{false, false, true}},
		{"cesql", nil, []eventingv1.SubscriptionsAPIFilter{{CESQL: "type = 'com.example.order.created' OR source LIKE '/oth%'"}}, []bool{true, false, true}},
		{"cesql: a missing attribute is an evaluation error: no match", nil, []eventingv1.SubscriptionsAPIFilter{{CESQL: "region = 'eu' OR source LIKE '/oth%'"}}, []bool{true, false, false}},
		{"an invalid expression (an empty exact value) is skipped", nil, []eventingv1.SubscriptionsAPIFilter{exact("type", "")}, []bool{true, true, true}},
		{"any of none passes", nil, []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{exact("type", "")}}}, []bool{true, true, true}},
		{"filters are ANDed", nil, []eventingv1.SubscriptionsAPIFilter{exact("region", "us"), {Prefix: map[string]string{"type": "com.example"}}}, []bool{false, true, false}},
		{"spec.filters take precedence over spec.filter", map[string]string{"type": "com.other.thing"}, []eventingv1.SubscriptionsAPIFilter{exact("source", "/orders")}, []bool{true, false, false}},
	} {
		f := NewFilter(c.attrs, c.filters)
		for i, e := range events {
			if got := f.Match(context.Background(), e); got != c.want[i] {
				t.Errorf("%s: event %s: match %v, want %v", c.name, e.Type(), got, c.want[i])
			}
		}
		f.Close()
	}
}
