package kafkasink_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/testenv"
)

const topic = "knative-broker-shop-default"

func brokerIngress(t *testing.T, topics ...kafkasink.Sink) (*httptest.Server, []string) {
	t.Helper()
	brokers := testenv.Kafka(t, 1, topic)
	bs := append([]kafkasink.Sink{{Namespace: "shop", Name: "default", Topic: topic, Structured: true}}, topics...)
	in, err := kafkasink.NewBrokers(brokers, bs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in)
	t.Cleanup(func() { srv.Close(); _ = in.Close() })
	return srv, brokers
}

func post(t *testing.T, url string, header map[string]string, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// records reads n records of the broker topic.
func records(t *testing.T, brokers []string, n int) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumer(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var out []*sarama.ConsumerMessage
	for len(out) < n {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d records of %d", len(out), n)
		}
	}
	return out
}

func header(m *sarama.ConsumerMessage, name string) string {
	for _, h := range m.Headers {
		if string(h.Key) == name {
			return string(h.Value)
		}
	}
	return ""
}

// TestBrokerIngress: each answer of Knative's kafka-broker-ingress, and
// what lands in the topic: binary records keyed by partitionkey.
func TestBrokerIngress(t *testing.T) {
	srv, brokers := brokerIngress(t)
	url := srv.URL + "/shop/default"
	binary := map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "order.placed",
		"ce-partitionkey": "order-7", "Content-Type": "application/json"}
	if code := post(t, url, binary, `{"n":1}`); code != http.StatusAccepted {
		t.Fatalf("binary event: %d, want 202", code)
	}
	structured := `{"specversion":"1.0","id":"2","source":"/s","type":"order.paid","datacontenttype":"application/json","data":{"n":2}}`
	if code := post(t, url+"/", map[string]string{"Content-Type": "application/cloudevents+json"}, structured); code != http.StatusAccepted {
		t.Fatalf("structured event (trailing slash): %d, want 202", code)
	}
	rs := records(t, brokers, 2)
	if string(rs[0].Key) != "order-7" || header(rs[0], "ce_partitionkey") != "order-7" || header(rs[0], "ce_type") != "order.placed" || string(rs[0].Value) != `{"n":1}` {
		t.Errorf("binary record: key %q headers %v value %s", rs[0].Key, rs[0].Headers, rs[0].Value)
	}
	if rs[1].Key != nil || header(rs[1], "ce_id") != "2" || header(rs[1], "content-type") != "application/json" || string(rs[1].Value) != `{"n":2}` {
		t.Errorf("a structured event is stored binary: key %q headers %v value %s", rs[1].Key, rs[1].Headers, rs[1].Value)
	}

	bad := map[string]struct {
		method, path string
		header       map[string]string
		body         string
		want         int
	}{
		"GET":              {http.MethodGet, "/shop/default", nil, "", http.StatusMethodNotAllowed},
		"GET unknown path": {http.MethodGet, "/shop/nope", nil, "", http.StatusMethodNotAllowed},
		"OPTIONS":          {http.MethodOptions, "/shop/default", nil, "", http.StatusMethodNotAllowed},
		"unknown broker":   {http.MethodPost, "/shop/nope", binary, "{}", http.StatusNotFound},
		"not a CloudEvent": {http.MethodPost, "/shop/default", map[string]string{"Content-Type": "application/json"}, "{}", http.StatusBadRequest},
		"no ce-id":         {http.MethodPost, "/shop/default", map[string]string{"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, "", http.StatusBadRequest},
		"bad structured":   {http.MethodPost, "/shop/default", map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0"}`, http.StatusBadRequest},
	}
	for name, c := range bad {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, c.want)
		}
	}
}

// TestBrokerIngressUnavailable: an event Kafka did not take is a 503, so
// that the sender retries it.
func TestBrokerIngressUnavailable(t *testing.T) {
	srv, _ := brokerIngress(t, kafkasink.Sink{Namespace: "shop", Name: "gone", Topic: "no-such-topic"})
	h := map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
	if code := post(t, srv.URL+"/shop/gone", h, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("produce failed: %d, want 503", code)
	}
}
