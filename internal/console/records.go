package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
)

// maxData is how much of a record's data the page gets.
const maxData = 4096

// Record is one Kafka record as the page shows it.
type Record struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Time      time.Time         `json:"time"`
	Key       string            `json:"key"`
	Headers   map[string]string `json:"headers,omitempty"` // other than a binary CloudEvent's ce_*
	// CloudEvent holds the attributes and extensions of a record that is
	// a CloudEvent (binary or structured mode); NotCloudEvent says why
	// another is not.
	CloudEvent    map[string]any `json:"cloudevent,omitempty"`
	NotCloudEvent string         `json:"not_cloudevent,omitempty"`
	Data          string         `json:"data"`
	DataBase64    bool           `json:"data_base64,omitempty"` // Data is base64: not UTF-8
	Truncated     bool           `json:"truncated,omitempty"`
	// DeadLetter: what a dead-lettered event's knativeerror* extensions say.
	DeadLetter *DeadLetter `json:"dead_letter,omitempty"`
}

// DeadLetter is why an event was dead-lettered.
type DeadLetter struct {
	Destination string `json:"destination"`
	Code        string `json:"code"`
	Answer      string `json:"answer"` // the destination's answer (knativeerrordata, decoded)
}

// reader reads the latest records of topics with one Kafka client.
type reader struct {
	brokers []string
	mu      sync.Mutex
	client  sarama.Client
}

func newReader(brokers []string) *reader { return &reader{brokers: brokers} }

func (r *reader) get() (sarama.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil && !r.client.Closed() {
		return r.client, nil
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.ClientID = "jobflow-console"
	sc.Consumer.Return.Errors = true
	sc.Consumer.IsolationLevel = sarama.ReadCommitted // what the sources deliver
	c, err := sarama.NewClient(r.brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	r.client = c
	return c, nil
}

func (r *reader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil {
		_ = r.client.Close()
	}
}

// TopicInfo is a topic's size.
type TopicInfo struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Records    int64  `json:"records"` // kept now (newest - oldest offsets)
}

func (r *reader) info(topic string) (TopicInfo, error) {
	c, err := r.get()
	if err != nil {
		return TopicInfo{}, err
	}
	ps, err := c.Partitions(topic)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("topic %s: %w", topic, err)
	}
	ti := TopicInfo{Name: topic, Partitions: len(ps)}
	for _, p := range ps {
		newest, err1 := c.GetOffset(topic, p, sarama.OffsetNewest)
		oldest, err2 := c.GetOffset(topic, p, sarama.OffsetOldest)
		if err1 == nil && err2 == nil {
			ti.Records += newest - oldest
		}
	}
	return ti, nil
}

// tail returns the records among the last perPartition of each partition
// of topic that keep accepts (nil: all), newest first.
func (r *reader) tail(ctx context.Context, topic string, perPartition int64, keep func(*sarama.ConsumerMessage) bool) ([]*sarama.ConsumerMessage, error) {
	c, err := r.get()
	if err != nil {
		return nil, err
	}
	ps, err := c.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	defer consumer.Close()
	var out []*sarama.ConsumerMessage
	for _, p := range ps {
		ms, err := tailPartition(ctx, c, consumer, topic, p, perPartition, keep)
		if err != nil {
			return out, err
		}
		out = append(out, ms...)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Timestamp.Equal(out[j].Timestamp) {
			return out[i].Timestamp.After(out[j].Timestamp)
		}
		return out[i].Offset > out[j].Offset
	})
	return out, nil
}

func tailPartition(ctx context.Context, c sarama.Client, consumer sarama.Consumer, topic string, p int32, n int64, keep func(*sarama.ConsumerMessage) bool) ([]*sarama.ConsumerMessage, error) {
	newest, err := c.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return nil, fmt.Errorf("%s/%d newest offset: %w", topic, p, err)
	}
	oldest, err := c.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("%s/%d oldest offset: %w", topic, p, err)
	}
	start := max(oldest, newest-n)
	if start >= newest {
		return nil, nil
	}
	pc, err := consumer.ConsumePartition(topic, p, start)
	if err != nil {
		return nil, fmt.Errorf("%s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	var out []*sarama.ConsumerMessage
	for {
		select {
		case <-ctx.Done():
			return out, nil // what was read in time
		case err := <-pc.Errors():
			return out, fmt.Errorf("%s/%d: %w", topic, p, err)
		case m := <-pc.Messages():
			if keep == nil || keep(m) {
				out = append(out, m)
			}
			if m.Offset >= newest-1 {
				return out, nil
			}
		}
	}
}

// decode makes the page's record of m.
func decode(ctx context.Context, m *sarama.ConsumerMessage) Record {
	rec := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Timestamp, Key: string(m.Key)}
	ev, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(m))
	data := m.Value
	if err != nil {
		rec.NotCloudEvent = err.Error()
	} else {
		data = ev.Data()
		rec.CloudEvent = map[string]any{"specversion": ev.SpecVersion(), "id": ev.ID(), "source": ev.Source(), "type": ev.Type()}
		for k, v := range map[string]string{"subject": ev.Subject(), "datacontenttype": ev.DataContentType(), "dataschema": ev.DataSchema()} {
			if v != "" {
				rec.CloudEvent[k] = v
			}
		}
		if !ev.Time().IsZero() {
			rec.CloudEvent["time"] = ev.Time()
		}
		for k, v := range ev.Extensions() {
			rec.CloudEvent[k] = v
		}
		rec.DeadLetter = deadLetterOf(ev.Extensions())
	}
	for _, h := range m.Headers {
		k := string(h.Key)
		if rec.CloudEvent != nil && (strings.HasPrefix(k, "ce_") || k == "content-type") {
			continue
		}
		if rec.Headers == nil {
			rec.Headers = map[string]string{}
		}
		rec.Headers[k] = string(h.Value)
	}
	if len(data) > maxData {
		data, rec.Truncated = data[:maxData], true
	}
	if utf8.Valid(data) {
		rec.Data = string(data)
	} else {
		rec.Data, rec.DataBase64 = base64.StdEncoding.EncodeToString(data), true
	}
	return rec
}

// deadLetterOf reads the knativeerror* extensions, or nil.
func deadLetterOf(ext map[string]any) *DeadLetter {
	dest, ok := ext["knativeerrordest"]
	if !ok {
		return nil
	}
	dl := &DeadLetter{Destination: fmt.Sprint(dest), Code: fmt.Sprint(ext["knativeerrorcode"])}
	if d, ok := ext["knativeerrordata"]; ok {
		s := fmt.Sprint(d)
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			s = string(b)
		}
		dl.Answer = s
	}
	return dl
}

// mentions says whether m names id: as its key, or in a header (ce_id,
// ce_subject, ce_partitionkey...), or in its value.
func mentions(m *sarama.ConsumerMessage, id []byte) bool {
	if bytes.Equal(m.Key, id) {
		return true
	}
	for _, h := range m.Headers {
		if bytes.Contains(h.Value, id) {
			return true
		}
	}
	return bytes.Contains(m.Value, id)
}
