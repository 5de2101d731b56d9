package trigger

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Replier puts a subscriber's reply into its broker's topic, as Knative's
// Kafka Broker does (straight to the topic, not through the ingress): in
// binary mode, keyed by its partitionkey extension, so that the reply is
// routed to every trigger of the broker like any event.
type Replier struct {
	producer sarama.SyncProducer
	topic    string
}

// NewReplier writes replies to topic with producer (shared by the triggers
// of an engine; the caller closes it).
func NewReplier(producer sarama.SyncProducer, topic string) *Replier {
	return &Replier{producer: producer, topic: topic}
}

// Reply writes e and returns once Kafka acknowledged it.
func (r *Replier) Reply(ctx context.Context, e *event.Event) error {
	pm := &sarama.ProducerMessage{Topic: r.topic}
	if err := kafka_sarama.WriteProducerMessage(binding.WithForceBinary(ctx), binding.ToMessage(e), pm); err != nil {
		return fmt.Errorf("reply %s: encode: %w", e.ID(), err)
	}
	if _, _, err := r.producer.SendMessage(pm); err != nil {
		return fmt.Errorf("reply %s: write to %s: %w", e.ID(), r.topic, err)
	}
	return nil
}
