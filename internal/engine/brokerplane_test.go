package engine_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/testenv"
)

const brokerManifests = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: knative-eventing}
data: {default.topic.partitions: "2", bootstrap.servers: "kafka.example:9092"}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: shop
  annotations: {eventing.knative.dev/broker.class: Kafka}
spec:
  config: {apiVersion: v1, kind: ConfigMap, name: cfg, namespace: knative-eventing}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: every-second, namespace: shop}
spec:
  schedule: "* * * * * *"
  contentType: application/json
  data: '{"tick":true}'
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}
`

const triggerManifest = `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all, namespace: shop}
spec:
  broker: default
  subscriber: {uri: "http://127.0.0.1:1/"}
`

// brokerPlaneConfig is an engine on a repository of only the given
// brokers/ manifests: no function, no database.
func brokerPlaneConfig(t *testing.T, manifests string) engine.Config {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "brokers"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "brokers", "broker.yaml"), []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	return engine.Config{
		Root: root, StateDir: t.TempDir(), Namespace: "jobflow", KafkaPort: testenv.FreePort(t),
		PostgresURL: "postgres://unused", ClickHouseAddr: "unused:0",
		IngressPort: testenv.FreePort(t), BrokerPort: testenv.FreePort(t), AdminPort: testenv.FreePort(t),
		CommitInterval: time.Second, StatusInterval: 200 * time.Millisecond, StartTimeout: time.Minute,
	}
}

// runEngine runs an engine until the test ends; done is closed when Run
// returned, with its error in *runErr.
func runEngine(t *testing.T, cfg engine.Config) (eng *engine.Engine, out *testenv.SyncBuffer, done <-chan struct{}, runErr *error) {
	t.Helper()
	out = &testenv.SyncBuffer{}
	eng = engine.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), out)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	runErr = new(error)
	go func() { *runErr = eng.Run(ctx); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			t.Error("engine did not stop")
		}
	})
	return eng, out, stopped, runErr
}

// TestBrokerAndPingSource: the engine serves the Broker's ingress on its
// port, writes what it accepts to knative-broker-<ns>-<name>, and fires the
// PingSource into the broker; /status and the status lines show the pings.
func TestBrokerAndPingSource(t *testing.T) {
	cfg := brokerPlaneConfig(t, brokerManifests)
	eng, out, done, runErr := runEngine(t, cfg)
	select {
	case <-eng.Ready():
	case <-done:
		t.Fatalf("engine stopped: %v\n%s", *runErr, out.String())
	case <-time.After(time.Minute):
		t.Fatalf("not ready\n%s", out.String())
	}
	url := eng.Plan().Brokers[0].URL
	if !strings.HasSuffix(url, "/shop/default") || !strings.Contains(url, ":"+itoa(cfg.BrokerPort)) {
		t.Fatalf("broker URL %s", url)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "/test", "ce-type": "dev.example.hello", "ce-partitionkey": "k"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST to the broker: %d", resp.StatusCode)
	}

	// The broker's topic holds the event and pings.
	types := topicTypes(t, eng.Plan().Brokers[0].Topic, "127.0.0.1:"+itoa(cfg.KafkaPort), 3)
	if !types["dev.example.hello"] || !types["dev.knative.sources.ping"] {
		t.Errorf("types in the broker topic: %v", types)
	}
	deadline := time.Now().Add(20 * time.Second)
	for eng.Status().Pings["every-second"].Delivered < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if p := eng.Status().Pings["every-second"]; p.Delivered < 2 || p.Dropped != 0 {
		t.Errorf("ping stats %+v", p)
	}
	var st struct {
		Pings map[string]struct{ Fired int64 } `json:"pingsources"`
	}
	admin, err := http.Get("http://127.0.0.1:" + itoa(cfg.AdminPort) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Body.Close()
	if err := json.NewDecoder(admin.Body).Decode(&st); err != nil || st.Pings["every-second"].Fired < 1 {
		t.Errorf("/status pingsources %+v %v", st.Pings, err)
	}
	for time.Now().Before(deadline) && !strings.Contains(out.String(), "pingsource every-second") {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "pingsource every-second") {
		t.Errorf("no status line of the PingSource:\n%s", out.String())
	}
}

// TestTriggerNeverIgnored: a Trigger the engine can run is run (it shows in
// /status), never silently left out; what it cannot run is refused at
// start with a reason (internal/engine/plan and internal/manifest tests).
func TestTriggerNeverIgnored(t *testing.T) {
	cfg := brokerPlaneConfig(t, brokerManifests+"---\n"+triggerManifest)
	eng, out, done, runErr := runEngine(t, cfg)
	select {
	case <-eng.Ready():
		if _, ok := eng.Status().Triggers["all"]; !ok {
			t.Errorf("trigger all runs but is not in the status: %+v", eng.Status())
		}
	case <-done:
		t.Fatalf("the engine refused a trigger it can run: %v\n%s", *runErr, out.String())
	case <-time.After(time.Minute):
		t.Fatalf("engine not ready after a minute\n%s", out.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// topicTypes reads at least n records of topic and returns their ce_type.
func topicTypes(t *testing.T, topic, broker string, n int) map[string]bool {
	t.Helper()
	c, err := sarama.NewConsumer([]string{broker}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	types := map[string]bool{}
	msgs := make(chan *sarama.ConsumerMessage, 64)
	for _, p := range []int32{0, 1} {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				msgs <- m
			}
		}()
	}
	deadline := time.After(20 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case m := <-msgs:
			for _, h := range m.Headers {
				if string(h.Key) == "ce_type" {
					types[string(h.Value)] = true
				}
			}
		case <-deadline:
			return types
		}
	}
	return types
}
