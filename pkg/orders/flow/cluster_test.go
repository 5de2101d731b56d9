package flow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
	"github.com/jobflow/jobflow/pkg/orders/verify"
)

// participants are the functions under test; the orders, users and
// notify functions are not run: the tests place orders as the orders
// function does, with order.placed into the broker.
var participants = []string{"payment", "stock", "delivery", "saga"}

// cluster is an engine running the orders Broker and the participants.
type cluster struct {
	cfg    engine.Config
	eng    *engine.Engine
	dbs    map[string]string
	out    *testenv.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

func (c *cluster) url(fn string) string { return fmt.Sprintf("http://127.0.0.1:%d", c.cfg.Ports[fn]) }
func (c *cluster) broker() string {
	return fmt.Sprintf("http://127.0.0.1:%d/jobflow/orders", c.cfg.BrokerPort)
}

func newConfig(t *testing.T) engine.Config {
	t.Helper()
	state := t.TempDir()
	// The signing key the engine would generate: the tests' own.
	if err := os.MkdirAll(filepath.Join(state, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "secrets", "orders-auth.jwt-key"), []byte(orderstest.JWTKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chAddr, _ := testenv.ClickHouseDB(t)
	dbs := engine.Databases{}
	ports := map[string]int{}
	for _, n := range participants {
		dbs[n] = testenv.PostgresDB(t)
		ports[n] = testenv.FreePort(t)
	}
	return engine.Config{
		Root: testenv.RootDir(t), StateDir: state, Namespace: "jobflow", Functions: participants,
		KafkaPort: testenv.FreePort(t), KafkaPersist: true, PostgresURL: testenv.PostgresDB(t), Databases: dbs,
		ClickHouseAddr: chAddr, Ports: ports,
		IngressPort: testenv.FreePort(t), BrokerPort: testenv.FreePort(t), AdminPort: testenv.FreePort(t),
		CommitInterval: time.Second, StartTimeout: 5 * time.Minute,
	}
}

// start runs an engine with cfg until stop or the test's end.
func start(t *testing.T, cfg engine.Config) *cluster {
	t.Helper()
	c := &cluster{cfg: cfg, dbs: cfg.Databases, out: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	c.eng = engine.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), c.out)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- c.eng.Run(ctx) }()
	select {
	case <-c.eng.Ready():
	case err := <-c.done:
		t.Fatalf("engine stopped before it was ready: %v\n%s", err, c.out.String())
	case <-time.After(6 * time.Minute):
		t.Fatalf("engine not ready after 6 minutes\n%s", c.out.String())
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("engine output:\n%s", c.out.String())
		}
	})
	return c
}

func (c *cluster) stop() error {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		return err
	case <-time.After(90 * time.Second):
		return fmt.Errorf("engine did not stop within 90s")
	}
}

// options are verify's options for the cluster's databases.
func (c *cluster) options() verify.Options {
	return verify.Options{Payment: c.dbs["payment"], Stock: c.dbs["stock"], Delivery: c.dbs["delivery"], Saga: c.dbs["saga"], Limit: 20}
}

// quiet waits until every order the saga knows of (want of them) is
// decided and every invariant holds, and returns the last report.
func (c *cluster) quiet(t *testing.T, want int, within time.Duration) verify.Report {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rep, err := verify.Once(context.Background(), c.options())
		if err == nil && rep.OK() && rep.Orders >= want {
			return rep
		}
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_, _ = verify.Check(context.Background(), c.options(), &buf)
			t.Fatalf("not quiet after %s (err %v): %d orders of %d\n%s", within, err, rep.Orders, want, buf.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// send POSTs e to the broker's ingress in binary mode; the status, or 0
// when the broker did not answer.
func send(client *http.Client, url string, e event.Event) int {
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// api calls a function's API with a token and a JSON body.
func api(t *testing.T, method, url, token string, body, into any) int {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(raw))
	if body == nil {
		req, _ = http.NewRequest(method, url, nil)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	if resp.StatusCode/100 != 2 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// replay sends every record of the broker's topic, from the beginning,
// into the broker again: every Trigger sees every event a second time.
func (c *cluster) replay(t *testing.T) int {
	t.Helper()
	topic := c.eng.Plan().Brokers[0].Topic
	for _, b := range c.eng.Plan().Brokers {
		if b.Name == "orders" {
			topic = b.Topic
		}
	}
	cons, err := sarama.NewConsumer([]string{fmt.Sprintf("127.0.0.1:%d", c.cfg.KafkaPort)}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := cons.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var all []event.Event
	for _, p := range parts {
		hw, err := highWater(cons, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(m))
			if err != nil {
				t.Fatalf("replay offset %d of partition %d: %v", m.Offset, p, err)
			}
			all = append(all, *e)
			if m.Offset+1 >= hw {
				break
			}
		}
		_ = pc.Close()
	}
	// 16 senders: the order across partitions does not matter, and one
	// order's events keep their relative order only loosely, as any
	// redelivery would.
	work := make(chan event.Event)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for e := range work {
				if send(client, c.broker(), e) != http.StatusAccepted {
					failed.Add(1)
				}
			}
		}()
	}
	for _, e := range all {
		work <- e
	}
	close(work)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("replay: the broker refused %d of %d events", failed.Load(), len(all))
	}
	return len(all)
}

func highWater(cons sarama.Consumer, topic string, p int32) (int64, error) {
	pc, err := cons.ConsumePartition(topic, p, sarama.OffsetNewest)
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.HighWaterMarkOffset(), nil
}
