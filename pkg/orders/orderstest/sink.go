package orderstest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/testenv"
)

// Sink is a KafkaSink ingress writing to one topic of its own broker.
type Sink struct {
	URL     string
	brokers []string
	topic   string
}

// NewSink starts a broker with topic (4 partitions) and a KafkaSink
// ingress in front of it; both stop when the test ends.
func NewSink(t testing.TB, topic string) *Sink {
	t.Helper()
	brokers := testenv.Kafka(t, 4, topic)
	s := kafkasink.Sink{Namespace: "test", Name: "sink", Topic: topic}
	in, err := kafkasink.New(brokers, []kafkasink.Sink{s}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	t.Cleanup(func() { srv.Close(); _ = in.Close() })
	return &Sink{URL: srv.URL + s.Path(), brokers: brokers, topic: topic}
}

// Events reads the topic from the start until it has at least n events
// (or 20 s passed) and returns them with their record keys.
func (s *Sink) Events(t testing.TB, n int) []Record {
	t.Helper()
	c, err := sarama.NewConsumer(s.brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(s.topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Record, 1024)
	for _, p := range parts {
		pc, err := c.ConsumePartition(s.topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(m))
				if err != nil {
					t.Errorf("record %d/%d is not a CloudEvent: %v", m.Partition, m.Offset, err)
					continue
				}
				out <- Record{Key: string(m.Key), Event: *e}
			}
		}()
	}
	var got []Record
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case r := <-out:
			got = append(got, r)
		case <-deadline:
			return got
		}
	}
	// anything more that is already there
	for {
		select {
		case r := <-out:
			got = append(got, r)
		case <-time.After(300 * time.Millisecond):
			return got
		}
	}
}

// Record is an event read from the topic with its Kafka key.
type Record struct {
	Key   string
	Event event.Event
}

// Do sends a request to h (token: "" for none) and decodes a JSON answer
// into out (nil: ignore); it returns the status and the raw body.
func Do(t testing.TB, h http.Handler, method, path, token string, header map[string]string, body string, out any) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if out != nil && w.Code < 300 {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, path, w.Body)
		}
	}
	return w.Code, w.Body.String()
}
