package kafkasink

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

// The ingress's record of a job event: the SDK's Kafka binding against
// binaryRecord.
func BenchmarkRecord(b *testing.B) {
	e := event.New()
	e.SetID("0d9b5f0e-2a53-5bd6-9a6e-3c1c0a4f8b11")
	e.SetSource("/jobflow/receiver")
	e.SetType("dev.jobflow.job.created")
	e.SetSubject("6f1c2a9e-8f0b-4b9e-9d1e-2f4b6a7c8d90")
	e.SetTime(time.Now())
	e.SetExtension("partitionkey", "6f1c2a9e-8f0b-4b9e-9d1e-2f4b6a7c8d90")
	e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	_ = e.SetData(event.ApplicationJSON, map[string]any{"id": "6f1c2a9e-8f0b-4b9e-9d1e-2f4b6a7c8d90", "sleep": 0, "data_size": 64})
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pm := &sarama.ProducerMessage{Topic: "t"}
			if err := kafka_sarama.WriteProducerMessage(binding.WithForceBinary(context.Background()), binding.ToMessage(&e), pm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binaryRecord", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := binaryRecord("t", &e); !ok {
				b.Fatal("not written")
			}
		}
	})
}
