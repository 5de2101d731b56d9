package kafkasink

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

// recordText is a record's key, value and headers (sorted: the SDK writes
// extensions in map order), to compare records.
func recordText(t *testing.T, pm *sarama.ProducerMessage) string {
	t.Helper()
	enc := func(e sarama.Encoder) string {
		if e == nil {
			return "<nil>"
		}
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%q", b)
	}
	hs := make([]string, 0, len(pm.Headers))
	for _, h := range pm.Headers {
		hs = append(hs, fmt.Sprintf("%s=%q", h.Key, h.Value))
	}
	slices.Sort(hs)
	return fmt.Sprintf("topic %s key %s value %s headers %v", pm.Topic, enc(pm.Key), enc(pm.Value), hs)
}

// The ingress's binary records are the SDK binding's, header for header.
func TestBinaryRecordIsTheSDKsRecord(t *testing.T) {
	base := event.New()
	base.SetID("id-1")
	base.SetSource("/jobflow/receiver")
	base.SetType("dev.jobflow.job.created")
	cases := map[string]func(e *event.Event){
		"bare": func(e *event.Event) {},
		"job": func(e *event.Event) {
			e.SetSubject("job-1")
			e.SetTime(time.Date(2026, 12, 2, 1, 2, 3, 4, time.FixedZone("x", 7200)))
			e.SetExtension("partitionkey", "job-1")
			_ = e.SetData(event.ApplicationJSON, map[string]int{"a": 1})
		},
		"text data":  func(e *event.Event) { _ = e.SetData("text/csv", []byte("a,b\n")) },
		"empty data": func(e *event.Event) { e.SetDataContentType("text/plain"); e.DataEncoded = []byte{} },
		"typed extension": func(e *event.Event) {
			e.SetExtension("n", 7)
			e.SetExtension("ok", true)
			e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		},
		"empty key":  func(e *event.Event) { e.SetExtension("partitionkey", "") },
		"dataschema": func(e *event.Event) { e.SetDataSchema("https://example.com/s") },
	}
	for name, set := range cases {
		e := base.Clone()
		set(&e)
		want := &sarama.ProducerMessage{Topic: "t"}
		if err := kafka_sarama.WriteProducerMessage(binding.WithForceBinary(context.Background()), binding.ToMessage(&e), want); err != nil {
			t.Fatal(err)
		}
		got, ok := binaryRecord("t", &e)
		if !ok {
			t.Errorf("%s: not written", name)
			continue
		}
		if g, w := recordText(t, got), recordText(t, want); g != w {
			t.Errorf("%s:\n got %s\nwant %s", name, g, w)
		}
	}
	// Spec 0.3 is the SDK's to write.
	old := base.Clone()
	old.SetSpecVersion(event.CloudEventsVersionV03)
	if _, ok := binaryRecord("t", &old); ok {
		t.Error("a 0.3 event was written")
	}
}
