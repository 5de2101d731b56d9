package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/replay"
	"github.com/jobflow/jobflow/internal/testenv"
)

const replaySource = `apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata:
  name: s1
  namespace: jobflow
spec:
  consumerGroup: g1
  bootstrapServers: [x:9092]
  topics: [t1]
  sink:
    uri: http://127.0.0.1:1/
`

// With no engine running, replay moves the group in the embedded broker's
// persisted data, where the next `jobflow up` finds it.
func TestReplayStoppedEngine(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "triggers"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "triggers", "s1.yaml"), []byte(replaySource), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(state, "kafka")
	g := replay.Group{ID: "g1", Topics: []string{"t1"}}
	ctx := context.Background()

	b, err := kafkabroker.Start(0, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := kafkabroker.EnsureTopics(b.Addrs(), []kafkabroker.TopicSpec{{Name: "t1", Partitions: 2}}); err != nil {
		t.Fatal(err)
	}
	p := testenv.Producer(t, b.Addrs())
	for i := range 6 {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "t1", Partition: int32(i % 2), Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.StringEncoder("v")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := replay.Reset(ctx, b.Addrs(), g, replay.Position{Offset: ptr64(1000)}); err != nil { // consumed to the end
		t.Fatal(err)
	}
	b.Close()

	t.Setenv("JOBFLOW_ROOT", root)
	t.Setenv("JOBFLOW_DIR", state)
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("JOBFLOW_ADMIN_PORT", strconv.Itoa(testenv.FreePort(t))) // no engine there
	var out bytes.Buffer
	if err := runReplay(ctx, []string{"s1", "--to-beginning"}, &out); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "t1/0: 3 -> 0") || !strings.Contains(out.String(), "t1/1: 3 -> 0") {
		t.Fatalf("replay said:\n%s", out.String())
	}
	if err := runReplay(ctx, []string{"nope", "--to-beginning"}, &out); err == nil || !strings.Contains(err.Error(), "no KafkaSource or Trigger") {
		t.Fatalf("unknown source: %v", err)
	}
	if err := runReplay(ctx, []string{"s1", "--to-beginning", "--offset", "2"}, &out); err == nil {
		t.Fatal("two positions taken")
	}

	b, err = kafkabroker.Start(0, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	admin, err := sarama.NewClusterAdmin(b.Addrs(), replay.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	offs, err := admin.ListConsumerGroupOffsets("g1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for part := int32(0); part < 2; part++ {
		if blk := offs.GetBlock("t1", part); blk == nil || blk.Offset != 0 {
			t.Fatalf("t1/%d after a restart: %+v, want offset 0", part, blk)
		}
	}
}

func ptr64(n int64) *int64 { return &n }
