package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// ErrInvalidCloudEvent: a record of a broker's topic is not a CloudEvent.
var ErrInvalidCloudEvent = errors.New("record is not a valid CloudEvent")

// BrokerEvent maps a record of a broker's topic to the event a Trigger
// delivers: the CloudEvent it holds (binary or structured) plus the
// extensions knativekafkapartition and knativekafkaoffset (as strings, the
// form in which they reach a subscriber over HTTP). A record that is not a
// valid CloudEvent is ErrInvalidCloudEvent.
//
// Every Trigger of a broker reads every record and most filter it out, so
// the usual record (binary mode, CloudEvents 1.0, as the ingress and the
// replies write them) is read straight from its headers (readBinary);
// anything else goes through the SDK's reader.
func BrokerEvent(ctx context.Context, m *sarama.ConsumerMessage) (*event.Event, error) {
	e, ok := readBinary(m)
	if !ok {
		var err error
		if e, err = sdkBrokerEvent(ctx, m); err != nil {
			return nil, err
		}
	}
	e.SetExtension("knativekafkapartition", strconv.Itoa(int(m.Partition)))
	e.SetExtension("knativekafkaoffset", strconv.FormatInt(m.Offset, 10))
	return e, nil
}

// sdkBrokerEvent reads m with the SDK's Kafka reader.
func sdkBrokerEvent(ctx context.Context, m *sarama.ConsumerMessage) (*event.Event, error) {
	msg := kafka_sarama.NewMessageFromConsumerMessage(m)
	enc := msg.ReadEncoding()
	if enc != binding.EncodingBinary && enc != binding.EncodingStructured {
		return nil, fmt.Errorf("%s/%d/%d: %w", m.Topic, m.Partition, m.Offset, ErrInvalidCloudEvent)
	}
	e, err := binding.ToEvent(ctx, msg)
	if err == nil {
		err = e.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("%s/%d/%d: %w: %w", m.Topic, m.Partition, m.Offset, ErrInvalidCloudEvent, err)
	}
	if enc == binding.EncodingBinary {
		undoReaderExtensions(e, m)
	}
	return e, nil
}

// readBinary reads a binary-mode CloudEvents 1.0 record from its headers
// into the event the SDK's reader makes of it (brokerevent_test.go checks
// they are equal), without its copies of headers and data. ok is false for
// anything else (structured mode, another spec version, a header repeated,
// an invalid attribute or event): the SDK's reader decides those.
func readBinary(m *sarama.ConsumerMessage) (*event.Event, bool) {
	e := event.New()
	var seenBuf [16]string
	seen := seenBuf[:0]
	version := false
	for _, h := range m.Headers {
		if h == nil {
			return nil, false
		}
		k := lowerASCII(h.Key)
		var name string
		switch {
		case string(k) == "content-type":
			name = "datacontenttype"
		case len(k) > 3 && string(k[:3]) == "ce_" && validName(k[3:]):
			name = string(k[3:])
		default:
			continue
		}
		for _, n := range seen {
			if n == name {
				return nil, false
			}
		}
		seen = append(seen, name)
		if name == "specversion" {
			if string(h.Value) != event.CloudEventsVersionV1 {
				return nil, false
			}
			version = true
			continue
		}
		if setAttribute(&e, name, string(h.Value)) != nil {
			return nil, false
		}
	}
	if len(m.Value) > 0 {
		e.DataEncoded = m.Value
	}
	return &e, version && e.Validate() == nil
}

// setAttribute sets the attribute name of e from its header value.
func setAttribute(e *event.Event, name, v string) error {
	switch name {
	case "id":
		e.SetID(v)
	case "source":
		e.SetSource(v)
	case "type":
		e.SetType(v)
	case "subject":
		e.SetSubject(v)
	case "datacontenttype":
		e.SetDataContentType(v)
	case "dataschema":
		e.SetDataSchema(v)
	case "time":
		t, err := types.ParseTime(v)
		if err != nil {
			return fmt.Errorf("time %q: %w", v, err)
		}
		e.SetTime(t)
	default:
		// The SDK's reader sets a header's extension as a string; name is
		// lower-case letters and digits (validName), which SetExtension
		// would check and lower-case again.
		ec, ok := e.Context.(*event.EventContextV1)
		if !ok {
			return e.Context.SetExtension(name, v)
		}
		if ec.Extensions == nil {
			ec.Extensions = make(map[string]any, 4)
		}
		ec.Extensions[name] = v
	}
	return nil // a setter's error is in e.FieldErrors: Validate reports it
}
