package kafkasource

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

// consumed is the record a consumer reads of e written in binary mode (or
// structured) by the SDK's Kafka writer.
func consumed(t *testing.T, e event.Event, structured bool) *sarama.ConsumerMessage {
	t.Helper()
	ctx := context.Background()
	if structured {
		ctx = binding.WithForceStructured(ctx)
	}
	pm := &sarama.ProducerMessage{Topic: "b"}
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&e), pm); err != nil {
		t.Fatal(err)
	}
	m := &sarama.ConsumerMessage{Topic: "b", Partition: 3, Offset: 42}
	if pm.Value != nil {
		m.Value, _ = pm.Value.Encode()
	}
	for _, h := range pm.Headers {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return m
}

// TestReadBinaryIsTheSDKsReading: the fast path makes the very event the
// SDK's reader makes, and leaves to it what it does not handle.
func TestReadBinaryIsTheSDKsReading(t *testing.T) {
	full := event.New()
	full.SetID("1")
	full.SetType("com.example.a")
	full.SetSource("/s")
	full.SetSubject("sub")
	full.SetDataSchema("https://example.com/schema")
	full.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
	full.SetExtension("partitionkey", "k")
	full.SetExtension("count", 7)
	_ = full.SetData("application/json", map[string]int{"a": 1})
	bare := event.New()
	bare.SetID("2")
	bare.SetType("t")
	bare.SetSource("/s")
	for _, e := range []event.Event{full, bare} {
		m := consumed(t, e, false)
		fast, ok := readBinary(m)
		if !ok {
			t.Fatalf("%s: not read by the fast path", e.ID())
		}
		slow, err := sdkBrokerEvent(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if fast.String() != slow.String() || !reflect.DeepEqual(fast.Extensions(), slow.Extensions()) || string(fast.Data()) != string(slow.Data()) {
			t.Fatalf("fast path\n%s\nSDK\n%s", fast, slow)
		}
	}
	// Left to the SDK's reader.
	structured := consumed(t, full, true)
	v03 := consumed(t, bare, false)
	for _, h := range v03.Headers {
		if string(h.Key) == "ce_specversion" {
			h.Value = []byte("0.3")
		}
	}
	dup := consumed(t, bare, false)
	dup.Headers = append(dup.Headers, &sarama.RecordHeader{Key: []byte("CE_ID"), Value: []byte("3")})
	badTime := consumed(t, bare, false)
	badTime.Headers = append(badTime.Headers, &sarama.RecordHeader{Key: []byte("ce_time"), Value: []byte("yesterday")})
	plain := &sarama.ConsumerMessage{Value: []byte("not an event")}
	for name, m := range map[string]*sarama.ConsumerMessage{"structured": structured, "0.3": v03, "repeated header": dup, "bad time": badTime, "no CloudEvent": plain} {
		if _, ok := readBinary(m); ok {
			t.Errorf("%s: read by the fast path", name)
		}
	}
	if _, err := BrokerEvent(context.Background(), plain); err == nil {
		t.Fatal("a record that is not a CloudEvent must be refused")
	}
	if e, err := BrokerEvent(context.Background(), structured); err != nil || e.Extensions()["knativekafkaoffset"] != "42" {
		t.Fatalf("structured: %v %v", e, err)
	}
}
