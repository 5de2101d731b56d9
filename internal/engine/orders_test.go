package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/events"
)

// TestOrdersUsersNotifyOnTheEngine runs the users, orders and notify
// functions with the repository's manifests on the engine: a user
// registers (user.changed through the orders-users KafkaSink into the
// compacted topic, from which notify materialises its customer), logs in,
// orders (order.placed in the orders Broker through the SinkBinding); the
// decision, posted to the Broker as the saga does, reaches orders (status)
// and notify (one message by name) through their Triggers, also when it
// is delivered twice.
func TestOrdersUsersNotifyOnTheEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the engine")
	}
	ports := map[string]int{"users": testenv.FreePort(t), "orders": testenv.FreePort(t), "notify": testenv.FreePort(t)}
	cfg := engine.Config{
		Root: testenv.RootDir(t), StateDir: t.TempDir(), Namespace: "jobflow", KafkaPort: testenv.FreePort(t),
		PostgresURL: testenv.PostgresDB(t), ClickHouseAddr: "unused:0",
		Databases: map[string]string{"users": testenv.PostgresDB(t), "orders": testenv.PostgresDB(t), "notify": testenv.PostgresDB(t)},
		Functions: []string{"users", "orders", "notify"}, Ports: ports,
		IngressPort: testenv.FreePort(t), BrokerPort: testenv.FreePort(t), AdminPort: testenv.FreePort(t),
		CommitInterval: time.Second, StartTimeout: 5 * time.Minute,
	}
	eng, out, done, runErr := runEngine(t, cfg)
	select {
	case <-eng.Ready():
	case <-done:
		t.Fatalf("engine stopped: %v\n%s", *runErr, out.String())
	case <-time.After(6 * time.Minute):
		t.Fatalf("not ready\n%s", out.String())
	}
	url := func(fn, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", ports[fn], path) }
	call := func(method, u, token, key, body string, into any) int {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if into != nil && resp.StatusCode < 300 {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}

	if code := call("POST", url("users", "/users"), "", "", `{"username":"ann","password":"ann-secret-1","first_name":"Ann","last_name":"Lee","email":"ann@example.com"}`, nil); code != 201 {
		t.Fatalf("register: %d\n%s", code, out.String())
	}
	var login struct{ Token string }
	if code := call("POST", url("users", "/login"), "", "", `{"username":"ann","password":"ann-secret-1"}`, &login); code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code := call("GET", url("orders", "/orders"), "", "", "", nil); code != 401 {
		t.Errorf("orders without a token: %d", code)
	}
	if code := call("POST", url("orders", "/orders"), login.Token, "big", `{"product_id":1,"x":"`+strings.Repeat("a", 2<<20)+`"}`, nil); code != 413 {
		t.Errorf("oversized order: %d", code)
	}
	var o struct {
		ID     uuid.UUID `json:"order_id"`
		Status string
	}
	if code := call("POST", url("orders", "/orders"), login.Token, "k1", `{"product_id":1,"number":2,"unit_price_cents":1250}`, &o); code != 202 {
		t.Fatalf("order: %d", code)
	}
	if placed := brokerEvents(t, cfg.KafkaPort, "knative-broker-jobflow-orders", events.PlacedID(o.ID)); placed[events.PlacedID(o.ID)] != o.ID.String() {
		t.Errorf("order.placed in the orders broker: %v", placed)
	}

	// The saga's decision, sent into the broker twice.
	d, err := events.NewDecided(events.Decided{OrderID: o.ID, UserID: 1, AmountCents: 2500, DecidedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		req, _ := http.NewRequest("POST", eng.Plan().Brokers[brokerIndex(eng, "orders")].URL, nil)
		if err := writeEvent(req, d); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("decision into the broker: %v %v", resp, err)
		}
		_ = resp.Body.Close()
	}
	deadline := time.Now().Add(60 * time.Second)
	var msgs []struct {
		OrderID uuid.UUID `json:"order_id"`
		Text    *string
	}
	for time.Now().Before(deadline) {
		call("GET", url("orders", "/orders/"+o.ID.String()), login.Token, "", "", &o)
		msgs = nil
		call("GET", url("notify", "/notifications"), login.Token, "", "", &msgs)
		if o.Status == "confirmed" && len(msgs) == 1 && msgs[0].Text != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if o.Status != "confirmed" || len(msgs) != 1 || msgs[0].Text == nil || !strings.HasPrefix(*msgs[0].Text, "Dear Ann Lee") {
		t.Fatalf("after the decision: order %+v, messages %+v\n%s", o, msgs, out.String())
	}
}

func brokerIndex(eng *engine.Engine, name string) int {
	for i, b := range eng.Plan().Brokers {
		if b.Name == name {
			return i
		}
	}
	return -1
}

// writeEvent puts e on req in binary mode.
func writeEvent(req *http.Request, e event.Event) error {
	return cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req)
}

// brokerEvents reads every partition of topic until it has seen the event
// want (or 30 s passed) and returns the ids it read with their record keys
// (the topic holds other events too: the orders-sweep pings).
func brokerEvents(t *testing.T, kafkaPort int, topic string, want string) map[string]string {
	t.Helper()
	c, err := sarama.NewConsumer([]string{fmt.Sprintf("127.0.0.1:%d", kafkaPort)}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ id, key string }
	recs, done := make(chan rec, 64), make(chan struct{})
	defer close(done)
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				if e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(m)); err == nil {
					select {
					case recs <- rec{e.ID(), string(m.Key)}:
					case <-done:
						return
					}
				}
			}
		}()
	}
	got := map[string]string{}
	deadline := time.After(30 * time.Second)
	for _, seen := got[want]; !seen; _, seen = got[want] {
		select {
		case r := <-recs:
			got[r.id] = r.key
		case <-deadline:
			return got
		}
	}
	return got
}
