package kafkasource

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestPlainRecordIsWrappedAsKnativeDoes(t *testing.T) {
	ts := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	m := &sarama.ConsumerMessage{Topic: "dialogs.public.messages", Partition: 2, Offset: 41, Key: []byte(`{"id":7}`),
		Value: []byte(`{"op":"c"}`), Timestamp: ts,
		Headers: []*sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}, {Key: []byte("X-Trace_ID"), Value: []byte("abc")}}}
	e, err := ToEvent(context.Background(), m, "jobflow", "counter-source")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id": "partition:2/offset:41", "type": KafkaEventType, "subject": "partition:2#41",
		"source": "/apis/v1/namespaces/jobflow/kafkasources/counter-source#dialogs.public.messages",
	}
	got := map[string]string{"id": e.ID(), "type": e.Type(), "subject": e.Subject(), "source": e.Source()}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	ext := e.Extensions()
	if ext["key"] != `{"id":7}` || ext["partitionkey"] != `{"id":7}` || ext["kafkaheaderxtraceid"] != "abc" || ext["kafkaheadercontenttype"] != "application/json" {
		t.Errorf("extensions = %v", ext)
	}
	if !e.Time().Equal(ts) || e.DataContentType() != "application/json" || string(e.Data()) != `{"op":"c"}` {
		t.Errorf("time/data: %v %q %q", e.Time(), e.DataContentType(), e.Data())
	}
}

func TestCloudEventRecordPassesThrough(t *testing.T) {
	m := &sarama.ConsumerMessage{Topic: "t", Partition: 0, Offset: 9, Value: []byte(`{"a":1}`), Headers: []*sarama.RecordHeader{
		{Key: []byte("ce_specversion"), Value: []byte("1.0")}, {Key: []byte("ce_id"), Value: []byte("abc")},
		{Key: []byte("ce_source"), Value: []byte("/s")}, {Key: []byte("ce_type"), Value: []byte("dev.x")},
		{Key: []byte("content-type"), Value: []byte("application/json")}}}
	e, err := ToEvent(context.Background(), m, "ns", "src")
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "abc" || e.Source() != "/s" || e.Type() != "dev.x" || string(e.Data()) != `{"a":1}` {
		t.Fatalf("not passed through: %v", e)
	}
}

func TestInvalidCloudEventRecordIsWrappedNotLost(t *testing.T) {
	m := &sarama.ConsumerMessage{Topic: "t", Partition: 1, Offset: 3, Value: []byte("raw"),
		Headers: []*sarama.RecordHeader{{Key: []byte("ce_specversion"), Value: []byte("1.0")}}}
	e, err := ToEvent(context.Background(), m, "ns", "src")
	if err != nil {
		t.Fatal(err)
	}
	if e.Type() != KafkaEventType || string(e.Data()) != "raw" {
		t.Fatalf("want the raw record wrapped, got %v", e)
	}
}

func TestOffsetTrackerCommitsOnlyTheFinishedPrefix(t *testing.T) {
	tr := newOffsetTracker()
	for off := int64(10); off < 20; off++ {
		tr.add(off)
	}
	if _, moved := tr.finish(12); moved {
		t.Fatal("12 finished before 10 and 11: nothing is committable")
	}
	if next, moved := tr.finish(10); !moved || next != 11 {
		t.Fatalf("after 10: next %d moved %v, want 11", next, moved)
	}
	if next, moved := tr.finish(11); !moved || next != 13 {
		t.Fatalf("after 11 (12 already done): next %d, want 13", next)
	}
	// Finish the rest in random order: the commit point ends past 19.
	rest := []int64{13, 14, 15, 16, 17, 18, 19}
	rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	var last int64
	for _, off := range rest {
		if next, moved := tr.finish(off); moved {
			if next <= last {
				t.Fatalf("commit point went back: %d after %d", next, last)
			}
			last = next
		}
	}
	if last != 20 || tr.inFlight() != 0 || !tr.sorted() {
		t.Fatalf("final commit point %d, in flight %d", last, tr.inFlight())
	}
	// A batch finishes at once; an offset never added changes nothing.
	for off := int64(20); off < 30; off++ {
		tr.add(off)
	}
	if next, moved := tr.finish(23, 21, 99, 22); moved {
		t.Fatalf("20 not finished, yet the commit point moved to %d", next)
	}
	if next, moved := tr.finish(20, 24); !moved || next != 25 || tr.inFlight() != 5 {
		t.Fatalf("after 20 and 24: next %d moved %v, in flight %d; want 25 and 5", next, moved, tr.inFlight())
	}
}
