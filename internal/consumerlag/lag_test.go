package consumerlag

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/testenv"
)

// The lag is the records produced less those the group committed, per
// reset policy for a group that never committed.
func TestLagFollowsCommits(t *testing.T) {
	brokers := testenv.Kafka(t, 2, "lag-topic")
	p := testenv.Producer(t, brokers)
	for range 10 {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "lag-topic", Value: sarama.StringEncoder("x")}); err != nil {
			t.Fatal(err)
		}
	}
	groups := []Group{
		{Name: "late", Kind: "trigger", Group: "g-late", Topics: []string{"lag-topic"}},
		{Name: "early", Kind: "source", Group: "g-early", Topics: []string{"lag-topic"}, Earliest: true},
	}
	poller := New(brokers, groups, 100*time.Millisecond, slog.Default())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go poller.Run(ctx)
	waitLag(t, poller, "late", 0)
	waitLag(t, poller, "early", 10)

	// The early group commits 3 records: 7 remain.
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup(brokers, "g-early", cfg)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	if err := cg.Consume(cctx, []string{"lag-topic"}, markThree{done: stop, mu: &sync.Mutex{}, n: new(int)}); err != nil {
		t.Fatal(err)
	}
	if err := cg.Close(); err != nil { // commits
		t.Fatal(err)
	}
	waitLag(t, poller, "early", 7)
}

func waitLag(t *testing.T, p *Poller, name string, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := p.Lag(name)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag of %s: %d (measured %v), want %d", name, got, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// markThree marks three records and ends the session.
type markThree struct {
	done context.CancelFunc
	mu   *sync.Mutex
	n    *int
}

func (markThree) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (markThree) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (m markThree) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		m.mu.Lock()
		if *m.n < 3 {
			s.MarkMessage(msg, "")
			*m.n++
			if *m.n == 3 {
				s.Commit()
				m.done()
			}
		}
		m.mu.Unlock()
	}
	return nil
}
