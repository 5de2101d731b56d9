package trigger_test

import (
	"context"
	"testing"

	"github.com/IBM/sarama"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/trigger"
)

// record is a broker topic's record with these headers (name, value
// pairs) and body.
func record(body string, kv ...string) *sarama.ConsumerMessage {
	m := &sarama.ConsumerMessage{Topic: topic, Partition: 1, Offset: 7, Value: []byte(body)}
	for i := 0; i < len(kv); i += 2 {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return m
}

// TestHeaderScreenAgreesWithTheFilter checks the header screen (Rejects)
// against the full filter (knative's filters on the event BrokerEvent
// builds) on a table of filters by records: a record it rejects is a valid
// CloudEvent the filter does not match, and it does reject what it should
// (the plain binary record whose exact, prefix or attribute filter fails).
func TestHeaderScreenAgreesWithTheFilter(t *testing.T) {
	binary := func(kv ...string) *sarama.ConsumerMessage {
		return record("{}", append([]string{"ce_specversion", "1.0", "ce_id", "1", "ce_source", "/orders", "ce_type", "order.created",
			"content-type", "application/json", "ce_region", "eu", "ce_subject", "o-1"}, kv...)...)
	}
	records := map[string]*sarama.ConsumerMessage{
		"binary":            binary(),
		"binary, time":      binary("ce_time", "2026-12-02T08:00:00Z"),
		"upper-case keys":   record("{}", "CE_SPECVERSION", "1.0", "Ce_Id", "1", "ce_Source", "/orders", "CE_TYPE", "order.created", "Content-Type", "text/plain"),
		"no id (invalid)":   record("{}", "ce_specversion", "1.0", "ce_source", "/orders", "ce_type", "order.created"),
		"bad time":          binary("ce_time", "yesterday"),
		"bad source":        record("{}", "ce_specversion", "1.0", "ce_id", "1", "ce_source", "%zz", "ce_type", "order.created"),
		"type repeated":     binary("ce_type", "order.paid"),
		"bad extension":     binary("ce_re-gion", "eu"),
		"specversion 0.3":   record("{}", "ce_specversion", "0.3", "ce_id", "1", "ce_source", "/orders", "ce_type", "order.created"),
		"not a cloud event": record("hello", "x-trace", "1"),
		"structured": record(`{"specversion":"1.0","id":"1","source":"/orders","type":"order.created","region":"eu"}`,
			"content-type", "application/cloudevents+json"),
		"structured, ce_ headers too": record(`{"specversion":"1.0","id":"1","source":"/orders","type":"order.paid"}`,
			"content-type", "application/cloudevents+json; charset=utf-8", "ce_specversion", "1.0", "ce_id", "1", "ce_source", "/orders", "ce_type", "order.created"),
	}
	exact := func(k, v string) eventingv1.SubscriptionsAPIFilter {
		return eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{k: v}}
	}
	filters := []struct {
		name    string
		attrs   map[string]string
		filters []eventingv1.SubscriptionsAPIFilter
		rejects bool // the plain binary record is refused from its headers
	}{
		{"none", nil, nil, false},
		{"exact type, matching", nil, []eventingv1.SubscriptionsAPIFilter{exact("type", "order.created")}, false},
		{"exact type, not matching", nil, []eventingv1.SubscriptionsAPIFilter{exact("type", "order.paid")}, true},
		{"exact Type (no such extension)", nil, []eventingv1.SubscriptionsAPIFilter{exact("Type", "order.created")}, false},
		{"exact id and extension, one failing", nil, []eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"id": "1", "region": "us"}}}, true},
		{"exact missing extension", nil, []eventingv1.SubscriptionsAPIFilter{exact("tenant", "a")}, true},
		{"exact subject", nil, []eventingv1.SubscriptionsAPIFilter{exact("subject", "o-2")}, true},
		{"exact datacontenttype", nil, []eventingv1.SubscriptionsAPIFilter{exact("datacontenttype", "text/plain")}, true},
		{"exact source (decided on the event)", nil, []eventingv1.SubscriptionsAPIFilter{exact("source", "/payments")}, false},
		{"exact time (decided on the event)", nil, []eventingv1.SubscriptionsAPIFilter{exact("time", "2026-12-02T08:00:00Z")}, false},
		{"exact knativekafkapartition", nil, []eventingv1.SubscriptionsAPIFilter{exact("knativekafkapartition", "0")}, false},
		{"exact knativekafkaoffset, matching", nil, []eventingv1.SubscriptionsAPIFilter{exact("knativekafkaoffset", "7")}, false},
		{"prefix type", nil, []eventingv1.SubscriptionsAPIFilter{{Prefix: map[string]string{"type": "payment."}}}, true},
		{"suffix type, matching", nil, []eventingv1.SubscriptionsAPIFilter{{Suffix: map[string]string{"type": ".created"}}}, false},
		{"suffix source (decided on the event)", nil, []eventingv1.SubscriptionsAPIFilter{{Suffix: map[string]string{"source": "ments"}}}, false},
		{"exact with an empty value (skipped)", nil, []eventingv1.SubscriptionsAPIFilter{exact("type", "")}, false},
		{"two filters, the second failing", nil, []eventingv1.SubscriptionsAPIFilter{exact("region", "eu"), exact("type", "order.paid")}, true},
		{"all: one sure failure beside cesql", nil, []eventingv1.SubscriptionsAPIFilter{{All: []eventingv1.SubscriptionsAPIFilter{{CESQL: "region = 'eu'"}, exact("type", "x")}}}, true},
		{"any: cesql could pass", nil, []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{exact("type", "x"), {CESQL: "region = 'eu'"}}}}, false},
		{"any: all failing", nil, []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{exact("type", "x"), exact("region", "us")}}}, true},
		{"any of none", nil, []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{exact("type", "")}}}, false},
		{"not matching type", nil, []eventingv1.SubscriptionsAPIFilter{{Not: ptr(exact("type", "order.created"))}}, true},
		{"not of another type", nil, []eventingv1.SubscriptionsAPIFilter{{Not: ptr(exact("type", "x"))}}, false},
		{"not cesql", nil, []eventingv1.SubscriptionsAPIFilter{{Not: &eventingv1.SubscriptionsAPIFilter{CESQL: "region = 'eu'"}}}, false},
		{"not of an invalid filter", nil, []eventingv1.SubscriptionsAPIFilter{{Not: &eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{"type": ""}}}}, false},
		{"cesql", nil, []eventingv1.SubscriptionsAPIFilter{{CESQL: "type = 'x'"}}, false},
		{"attributes type, not matching", map[string]string{"type": "order.paid"}, nil, true},
		{"attributes type, matching", map[string]string{"type": "order.created"}, nil, false},
		{"attributes: any region", map[string]string{"region": ""}, nil, false},
		{"attributes: any tenant (missing)", map[string]string{"tenant": ""}, nil, true},
		{"attributes: any dataschema (decided on the event)", map[string]string{"dataschema": ""}, nil, false},
		{"attributes: empty map", map[string]string{}, nil, false},
	}
	ctx := context.Background()
	for _, fc := range filters {
		f := trigger.NewFilter(fc.attrs, fc.filters)
		for name, m := range records {
			rejected := f.Rejects(m.Headers)
			e, err := kafkasource.BrokerEvent(ctx, m)
			matched := err == nil && f.Match(ctx, e)
			if rejected && (err != nil || matched) {
				t.Errorf("%s, %s record: rejected from its headers, but the event is %v, matched %v", fc.name, name, err, matched)
			}
			if name == "binary" && rejected != fc.rejects {
				t.Errorf("%s, binary record: rejected %v, want %v (matched %v)", fc.name, rejected, fc.rejects, matched)
			}
		}
		f.Close()
	}
	// A valid record the filter does not match but its headers cannot
	// settle is still refused, by the full filter.
	f := trigger.NewFilter(nil, []eventingv1.SubscriptionsAPIFilter{exact("type", "order.paid")})
	defer f.Close()
	for _, name := range []string{"structured", "upper-case keys", "binary, time"} {
		m := records[name]
		e, err := kafkasource.BrokerEvent(ctx, m)
		if err != nil || f.Match(ctx, e) {
			t.Errorf("%s record: want a valid event the filter refuses, got %v", name, err)
		}
		if got := f.Rejects(m.Headers); got != (name != "structured") {
			t.Errorf("%s record: rejected from headers %v", name, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkScreenFiltered is what a record a trigger filters out costs in
// its partition's reader, with the header screen (Rejects) and without it
// (the event built, then the full filter), for an exact filter on type:
//
//	go test -run '^$' -bench BenchmarkScreenFiltered ./internal/trigger
func BenchmarkScreenFiltered(b *testing.B) {
	m := record(string(benchData), "ce_specversion", "1.0", "ce_id", "42", "ce_source", "/bench", "ce_type", "t3",
		"ce_partitionkey", "17", "content-type", "application/octet-stream")
	f := trigger.NewFilter(nil, []eventingv1.SubscriptionsAPIFilter{{Exact: map[string]string{"type": "t0"}}})
	defer f.Close()
	ctx := context.Background()
	b.Run("headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !f.Rejects(m.Headers) {
				b.Fatal("not rejected")
			}
		}
	})
	b.Run("event", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := kafkasource.BrokerEvent(ctx, m)
			if err != nil || f.Match(ctx, e) {
				b.Fatal("matched")
			}
		}
	})
}
