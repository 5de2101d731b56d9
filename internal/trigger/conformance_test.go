package trigger_test

// A conformance suite for Broker Triggers on a real Kafka-protocol broker:
// each test is named after the row of the README's Broker and Trigger
// contract it proves (T: trigger delivery, R: recipient, I: ingress, as
// numbered there from knative/specs; EKB: eventing-kafka-broker's own
// behaviour).

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/internal/trigger"
)

func exact(k, v string) eventingv1.SubscriptionsAPIFilter {
	return eventingv1.SubscriptionsAPIFilter{Exact: map[string]string{k: v}}
}

// TestT8T9FilterDialectsMatchAndDoNotMatch: every dialect of spec.filters
// and the legacy spec.filter.attributes (an empty value too), each a
// Trigger of its own on one broker, gets exactly the events it matches;
// the others are finished unsent (Filtered).
func TestT8T9FilterDialectsMatchAndDoNotMatch(t *testing.T) {
	brokers := testenv.Kafka(t, 2, topic)
	created, paid, other := newEvent("created", "com.example.order.created", "o-1"),
		newEvent("paid", "com.example.order.paid", "o-1"), newEvent("other", "com.other.thing", "")
	created.SetExtension("region", "eu")
	paid.SetExtension("region", "us")
	publish(t, brokers, created, paid, other)
	cases := []struct {
		name    string
		attrs   map[string]string
		filters []eventingv1.SubscriptionsAPIFilter
		want    []string
	}{
		{"none", nil, nil, []string{"created", "other", "paid"}},
		{"attributes", map[string]string{"type": "com.example.order.paid"}, nil, []string{"paid"}},
		{"attributes-empty", map[string]string{"region": ""}, nil, []string{"created", "paid"}},
		{"exact", nil, []eventingv1.SubscriptionsAPIFilter{exact("type", "com.example.order.created")}, []string{"created"}},
		{"prefix", nil, []eventingv1.SubscriptionsAPIFilter{{Prefix: map[string]string{"type": "com.example."}}}, []string{"created", "paid"}},
		{"suffix", nil, []eventingv1.SubscriptionsAPIFilter{{Suffix: map[string]string{"type": ".thing"}}}, []string{"other"}},
		{"all", nil, []eventingv1.SubscriptionsAPIFilter{{All: []eventingv1.SubscriptionsAPIFilter{exact("partitionkey", "o-1"), exact("region", "us")}}}, []string{"paid"}},
		{"any", nil, []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{exact("region", "eu"), exact("type", "com.other.thing")}}}, []string{"created", "other"}},
		{"not", nil, []eventingv1.SubscriptionsAPIFilter{{Not: &eventingv1.SubscriptionsAPIFilter{Prefix: map[string]string{"type": "com.example."}}}}, []string{"other"}},
		{"cesql", nil, []eventingv1.SubscriptionsAPIFilter{{CESQL: "type LIKE '%.paid' OR type = 'com.other.thing'"}}, []string{"other", "paid"}},
	}
	var cfgs []triggerCfg
	var subs []*subscriber
	for _, c := range cases {
		s := newSubscriber(t, nil)
		subs = append(subs, s)
		cfgs = append(cfgs, triggerCfg{group: "knative-trigger-test-" + c.name, attrs: c.attrs, filters: c.filters, target: s.srv.URL})
	}
	trigs := startTriggers(t, brokers, cfgs...)
	for i, c := range cases {
		waitFor(t, c.name+": all three events finished", func() bool {
			st := trigs[i].Stats()
			return st.Delivered+st.Filtered == 3
		})
		got := subs[i].ids()
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: delivered %v, want %v", c.name, got, c.want)
		}
		if f := trigs[i].Stats().Filtered; f != int64(3-len(c.want)) {
			t.Errorf("%s: %d filtered, want %d", c.name, f, 3-len(c.want))
		}
	}
}

// TestT7T13T27SubscriberGetsPreferReplyAndKafkaExtensionsWithTheEventUnchanged:
// the request carries Prefer: reply; the event carries knativekafkapartition
// and knativekafkaoffset (EKB), which a filter can match; every attribute
// and the data are the producer's.
func TestT7T13T27SubscriberGetsPreferReplyAndKafkaExtensionsWithTheEventUnchanged(t *testing.T) {
	brokers := testenv.Kafka(t, 1, topic)
	first, second := newEvent("e-0", "com.example.a", "k"), newEvent("e-1", "com.example.a", "k")
	second.SetSubject("s-1")
	second.SetExtension("tenant", "acme")
	publish(t, brokers, first, second)
	sub := newSubscriber(t, nil)
	startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL,
		filters: []eventingv1.SubscriptionsAPIFilter{exact("knativekafkaoffset", "1")}}) // only the second record
	waitFor(t, "a delivery", func() bool { return len(sub.all()) == 1 })
	r := sub.all()[0]
	if r.Header.Get("Prefer") != "reply" {
		t.Fatalf("Prefer %q, want reply", r.Header.Get("Prefer"))
	}
	ext := r.Event.Extensions()
	if ext["knativekafkapartition"] != "0" || ext["knativekafkaoffset"] != "1" {
		t.Fatalf("kafka extensions %v", ext)
	}
	got := r.Event.Clone()
	got.SetExtension("knativekafkapartition", nil)
	got.SetExtension("knativekafkaoffset", nil)
	if got.String() != second.String() {
		t.Fatalf("the event changed on its way:\n%s\nwant\n%s", got, second)
	}
}

// TestI3R1StructuredRecordsAreDeliveredAndInvalidOnesSkipped: a record in
// structured mode is delivered like a binary one; a record that is not a
// CloudEvent is skipped (EKB InvalidCloudEvent: counted, committed).
func TestI3R1StructuredRecordsAreDeliveredAndInvalidOnesSkipped(t *testing.T) {
	brokers := testenv.Kafka(t, 1, topic)
	p := producer(t, brokers)
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("not an event")}); err != nil {
		t.Fatal(err)
	}
	structured := newEvent("s-0", "com.example.structured", "")
	m := &sarama.ProducerMessage{Topic: topic}
	if err := kafka_sarama.WriteProducerMessage(binding.WithForceStructured(context.Background()), binding.ToMessage(&structured), m); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(m); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, nil)
	cfg := triggerCfg{group: "g", target: sub.srv.URL}
	tr := startTriggers(t, brokers, cfg)[0]
	waitFor(t, "1 delivered, 1 skipped", func() bool { st := tr.Stats(); return st.Delivered == 1 && st.Dropped == 1 })
	if got := sub.all()[0].Event; got.ID() != "s-0" || string(got.Data()) != string(structured.Data()) {
		t.Fatalf("delivered %s", got)
	}
	time.Sleep(300 * time.Millisecond) // commits
	tr.stop()
	publish(t, brokers, newEvent("after", "com.example.structured", ""))
	tr2 := startTriggers(t, brokers, cfg)[0]
	waitFor(t, "the new event", func() bool { return tr2.Stats().Delivered == 1 })
	if st := tr2.Stats(); st.Dropped != 0 || len(sub.of("s-0")) != 1 {
		t.Fatalf("skipped or delivered records were not committed: %+v", st)
	}
}

// replyTo answers an event of type from with a reply of type to (binary, or
// structured when structured is set).
func replyTo(from, to string, structured bool) func(e *event.Event, n int) answer {
	return func(e *event.Event, _ int) answer {
		if e.Type() != from {
			return answer{status: http.StatusAccepted}
		}
		id, data := "reply-"+e.ID(), `{"confirmed":true}`
		if structured {
			return answer{status: 200, header: map[string]string{"Content-Type": "application/cloudevents+json"},
				body: fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":%q,"source":"/sub","partitionkey":"o-9","datacontenttype":"application/json","data":%s}`, id, to, data)}
		}
		return answer{status: 200, body: data, header: map[string]string{"Content-Type": "application/json",
			"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Type": to, "Ce-Source": "/sub", "Ce-Partitionkey": "o-9"}}
	}
}

// TestT18ReplyIsRoutedBackIntoTheBrokerAndDeliveredToAnotherTrigger: a
// reply (binary or structured) goes into the broker's topic, keyed by its
// partitionkey, and is evaluated by every trigger: delivered to the one it
// matches, filtered by the one that produced it.
func TestT18ReplyIsRoutedBackIntoTheBrokerAndDeliveredToAnotherTrigger(t *testing.T) {
	for _, structured := range []bool{false, true} {
		t.Run(fmt.Sprintf("structured=%v", structured), func(t *testing.T) {
			brokers := testenv.Kafka(t, 2, topic)
			publish(t, brokers, newEvent("order-1", "order.created", "o-1"))
			a := newSubscriber(t, replyTo("order.created", "order.confirmed", structured))
			b := newSubscriber(t, nil)
			trs := startTriggers(t, brokers,
				triggerCfg{group: "knative-trigger-test-a", target: a.srv.URL, filters: []eventingv1.SubscriptionsAPIFilter{exact("type", "order.created")}},
				triggerCfg{group: "knative-trigger-test-b", target: b.srv.URL, attrs: map[string]string{"type": "order.confirmed"}})
			waitFor(t, "the reply at trigger b", func() bool { return len(b.all()) == 1 })
			got := b.all()[0].Event
			if got.ID() != "reply-order-1" || string(got.Data()) != `{"confirmed":true}` || got.Extensions()["partitionkey"] != "o-9" {
				t.Fatalf("reply delivered as %s", got)
			}
			waitFor(t, "trigger a filtered the reply", func() bool { return trs[0].Stats().Filtered == 1 })
			for _, m := range records(t, brokers) {
				if m.Offset == 0 || string(m.Key) != "o-9" {
					continue
				}
				return // the reply's record, keyed by its partitionkey
			}
			t.Fatal("no record keyed o-9: the reply was not keyed by its partitionkey")
		})
	}
}

// noReplyCase is a subscriber's answer that must not make a reply.
func noReply(t *testing.T, a answer) {
	t.Helper()
	brokers := testenv.Kafka(t, 1, topic)
	publish(t, brokers, newEvent("e-0", "com.example.a", ""))
	sub := newSubscriber(t, func(*event.Event, int) answer { return a })
	dls := newSubscriber(t, nil)
	tr := startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL, dls: dls.srv.URL})[0]
	waitFor(t, "delivery", func() bool { return tr.Stats().Delivered >= 1 })
	// A reply is stored before its record is finished: none can come later.
	if n := len(records(t, brokers)); n != 1 || len(sub.all()) != 1 || len(dls.all()) != 0 {
		t.Fatalf("%d records in the topic, %d attempts, %d dead letters: want 1, 1, 0", n, len(sub.all()), len(dls.all()))
	}
}

// TestT15A202IsNeverAReply: a 202 carrying a valid CloudEvent is no reply
// (the Kafka broker would store it).
func TestT15A202IsNeverAReply(t *testing.T) {
	noReply(t, answer{status: 202, header: map[string]string{"Content-Type": "application/cloudevents+json"},
		body: `{"specversion":"1.0","id":"r","type":"t","source":"/s"}`})
}

// TestT17R7AnEmpty200IsNoReply: a 200 with no body and no ce- headers
// completes the delivery.
func TestT17R7AnEmpty200IsNoReply(t *testing.T) {
	noReply(t, answer{status: 200})
}

// TestT28AMalformedReplyIsDeadLetteredNotRetried: a 2xx whose non-empty
// body is not a CloudEvent fails the delivery for good: one attempt, then
// the dead-letter sink with the knativeerror* extensions.
func TestT28AMalformedReplyIsDeadLetteredNotRetried(t *testing.T) {
	brokers := testenv.Kafka(t, 1, topic)
	publish(t, brokers, newEvent("e-0", "com.example.a", ""))
	sub := newSubscriber(t, func(*event.Event, int) answer {
		return answer{status: 200, header: map[string]string{"Content-Type": "text/plain"}, body: "not an event"}
	})
	dls := newSubscriber(t, nil)
	tr := startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL, dls: dls.srv.URL})[0]
	waitFor(t, "dead letter", func() bool { return tr.Stats().DeadLettered == 1 })
	if n := len(sub.all()); n != 1 {
		t.Fatalf("%d attempts: a malformed reply is not retried", n)
	}
	checkDeadLetter(t, dls, sub.srv.URL, "200", "not an event")
	if n := len(records(t, brokers)); n != 1 {
		t.Fatalf("%d records: nothing may be stored", n)
	}
}

func checkDeadLetter(t *testing.T, dls *subscriber, dest, code, data string) {
	t.Helper()
	got := dls.all()
	if len(got) != 1 || got[0].Event.ID() != "e-0" {
		t.Fatalf("dead-letter sink got %d events", len(got))
	}
	ext := got[0].Event.Extensions()
	body, _ := base64.StdEncoding.DecodeString(fmt.Sprint(ext["knativeerrordata"]))
	if ext["knativeerrordest"] != dest || ext["knativeerrorcode"] != code || string(body) != data {
		t.Fatalf("dead letter extensions %v, want dest %s code %s data %q", ext, dest, code, data)
	}
}

// flakyReplier fails the first failures replies, then stores them.
type flakyReplier struct {
	next     kafkasource.Replier
	failures int64
	calls    atomic.Int64
}

func (f *flakyReplier) Reply(ctx context.Context, e *event.Event) error {
	if f.calls.Add(1) <= f.failures {
		return errors.New("broker unavailable")
	}
	return f.next.Reply(ctx, e)
}

// TestT19AReplyThatCannotBeStoredIsRetriedThenDeadLettered: a reply that
// cannot be stored fails the delivery, which is retried (the subscriber is
// called again) and, once the retries are spent, dead-lettered.
func TestT19AReplyThatCannotBeStoredIsRetriedThenDeadLettered(t *testing.T) {
	for _, c := range []struct {
		name     string
		failures int64
		stored   int // reply records
	}{{"stored-at-the-third-attempt", 2, 1}, {"never-stored", 100, 0}} {
		t.Run(c.name, func(t *testing.T) {
			brokers := testenv.Kafka(t, 1, topic)
			publish(t, brokers, newEvent("e-0", "com.example.a", ""))
			sub := newSubscriber(t, replyTo("com.example.a", "com.example.b", false))
			dls := newSubscriber(t, nil)
			replier := &flakyReplier{next: trigger.NewReplier(producer(t, brokers), topic), failures: c.failures}
			tr := startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL, dls: dls.srv.URL, replies: replier,
				filters: []eventingv1.SubscriptionsAPIFilter{exact("type", "com.example.a")}})[0]
			waitFor(t, "the end of the delivery", func() bool { st := tr.Stats(); return st.Delivered+st.DeadLettered == 1 })
			if n := len(sub.of("e-0")); n != 3 {
				t.Fatalf("%d subscriber attempts, want 1 + 2 retries", n)
			}
			if n := len(records(t, brokers)) - 1; n != c.stored {
				t.Fatalf("%d replies stored, want %d", n, c.stored)
			}
			if c.stored == 0 {
				checkDeadLetter(t, dls, sub.srv.URL, "200", `{"confirmed":true}`)
			} else if len(dls.all()) != 0 {
				t.Fatal("dead-lettered although the reply was stored")
			}
		})
	}
}

// TestT21T22T11DeadLetterSinkGetsTheEventWithKnativeErrorExtensions: a
// retryable refusal is retried, then dead-lettered with knativeerrordest,
// knativeerrorcode and knativeerrordata; a non-retryable one at once.
func TestT21T22T11DeadLetterSinkGetsTheEventWithKnativeErrorExtensions(t *testing.T) {
	for _, c := range []struct {
		status, attempts int
	}{{500, 3}, {400, 1}} {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			brokers := testenv.Kafka(t, 1, topic)
			publish(t, brokers, newEvent("e-0", "com.example.a", ""))
			sub := newSubscriber(t, func(*event.Event, int) answer { return answer{status: c.status, body: "refused"} })
			dls := newSubscriber(t, nil)
			tr := startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL, dls: dls.srv.URL})[0]
			waitFor(t, "dead letter", func() bool { return tr.Stats().DeadLettered == 1 })
			if n := len(sub.all()); n != c.attempts {
				t.Fatalf("%d attempts, want %d", n, c.attempts)
			}
			checkDeadLetter(t, dls, sub.srv.URL, strconv.Itoa(c.status), "refused")
		})
	}
}
