package testenv

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Producer is a synchronous producer on brokers, closed when the test ends.
func Producer(tb testing.TB, brokers []string) sarama.SyncProducer {
	tb.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// ProduceEvents writes n CloudEvents of 1 KB to topic in binary mode, as a
// KafkaSink or Broker ingress writes them: id i, source /bench, type
// typeOf(i), keyed (partitionkey) over 64 keys. For benchmarks.
func ProduceEvents(tb testing.TB, brokers []string, topic string, n int, typeOf func(i int) string) {
	tb.Helper()
	p := Producer(tb, brokers)
	data := bytes.Repeat([]byte("x"), 1024)
	var batch []*sarama.ProducerMessage
	for i := range n {
		e := event.New()
		e.SetID(fmt.Sprint(i))
		e.SetSource("/bench")
		e.SetType(typeOf(i))
		e.SetExtension("partitionkey", fmt.Sprint(i%64))
		_ = e.SetData("application/octet-stream", data)
		m := &sarama.ProducerMessage{Topic: topic}
		if err := kafka_sarama.WriteProducerMessage(context.Background(), binding.ToMessage(&e), m); err != nil {
			tb.Fatal(err)
		}
		batch = append(batch, m)
		if len(batch) == 1000 || i == n-1 {
			if err := p.SendMessages(batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
