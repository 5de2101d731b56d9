package kafkabroker_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/testenv"
)

func produce(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < n; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("x")}); err != nil {
			t.Fatal(err)
		}
	}
}

func committed(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	r, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetBlock(topic, 0).Offset
}

// TestCommitLatest: a new group starts at the end the topic had when it
// was set up (events produced after that are not skipped, however late its
// consumer starts); a group that has an offset keeps it.
func TestCommitLatest(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "t")
	produce(t, brokers, "t", 3)
	if err := kafkabroker.CommitLatest(brokers, "g", "t"); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, brokers, "g", "t"); got != 3 {
		t.Fatalf("new group: committed %d, want 3 (the end at set-up)", got)
	}
	produce(t, brokers, "t", 2)
	if err := kafkabroker.CommitLatest(brokers, "g", "t"); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, brokers, "g", "t"); got != 3 {
		t.Fatalf("a committed offset moved to %d", got)
	}
	// A consumer of the group starting "latest" now still reads the two
	// events produced after the set-up.
	sc := sarama.NewConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	cg, err := sarama.NewConsumerGroup(brokers, "g", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	h := &firstOffset{got: make(chan int64, 1)}
	go func() { _ = cg.Consume(t.Context(), []string{"t"}, h) }()
	select {
	case off := <-h.got:
		if off != 3 {
			t.Errorf("consumer starts at %d, want 3", off)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no record")
	}
}

type firstOffset struct{ got chan int64 }

func (h *firstOffset) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *firstOffset) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *firstOffset) ConsumeClaim(_ sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		select {
		case h.got <- m.Offset:
		default:
		}
	}
	return nil
}
