package kafkasource

import (
	"context"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

// KafkaEventType is the type of a record that was not a CloudEvent.
const KafkaEventType = "dev.knative.kafka.event"

// ToEvent maps a record to the CloudEvent a KafkaSource delivers: a record
// that is a CloudEvent (binary or structured) passes through unchanged;
// any other record is wrapped as Knative does (id partition:<p>/offset:<o>,
// type dev.knative.kafka.event, source /apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>,
// subject partition:<p>#<o>, time = record time, extensions key and
// partitionkey = record key, kafkaheader<name> per header).
func ToEvent(ctx context.Context, m *sarama.ConsumerMessage, namespace, source string) (*event.Event, error) {
	msg := kafka_sarama.NewMessageFromConsumerMessage(m)
	if msg.ReadEncoding() != binding.EncodingUnknown {
		// A record that claims to be a CloudEvent but is not a valid one is
		// wrapped like any other record, so that its bytes still reach the
		// sink (which will refuse it into the dead-letter sink), never lost.
		if e, err := binding.ToEvent(ctx, msg); err == nil && e.Validate() == nil {
			if msg.ReadEncoding() == binding.EncodingBinary {
				undoReaderExtensions(e, m)
			}
			return e, nil
		}
	}
	e := event.New()
	e.SetID(fmt.Sprintf("partition:%d/offset:%d", m.Partition, m.Offset))
	e.SetType(KafkaEventType)
	e.SetSource(fmt.Sprintf("/apis/v1/namespaces/%s/kafkasources/%s#%s", namespace, source, m.Topic))
	e.SetSubject(fmt.Sprintf("partition:%d#%d", m.Partition, m.Offset))
	if !m.Timestamp.IsZero() {
		e.SetTime(m.Timestamp)
	}
	if len(m.Key) > 0 {
		e.SetExtension("key", string(m.Key))
		e.SetExtension("partitionkey", string(m.Key))
	}
	contentType := ""
	for _, h := range m.Headers {
		if h == nil {
			continue
		}
		name := string(h.Key)
		if strings.EqualFold(name, "content-type") {
			contentType = string(h.Value)
		}
		if ext := headerExtension(name); ext != "kafkaheader" {
			e.SetExtension(ext, string(h.Value))
		}
	}
	if err := e.SetData(contentType, m.Value); err != nil {
		return nil, fmt.Errorf("record %s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return &e, nil
}

// headerExtension is kafkaheader + the header name lowercased, keeping only a-z0-9.
func headerExtension(name string) string {
	var b strings.Builder
	b.WriteString("kafkaheader")
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// readerExtensions are added by the SDK's Kafka reader to every binary-mode
// event (from the record's offset, partition and topic). Knative passes a
// CloudEvent record through unchanged, so they are taken off again; a
// record that carried one of them as a ce_ header keeps its own value.
var readerExtensions = [...]string{"kafkaoffset", "kafkapartition", "kafkatopic"}

func undoReaderExtensions(e *event.Event, m *sarama.ConsumerMessage) {
	for _, name := range readerExtensions {
		var own []byte
		for _, h := range m.Headers {
			if h != nil && strings.EqualFold(string(h.Key), "ce_"+name) {
				own = h.Value
			}
		}
		if own != nil {
			e.SetExtension(name, string(own))
		} else {
			e.SetExtension(name, nil)
		}
	}
}
