package replay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/replay"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// sink counts the events it took, by id.
type sink struct {
	mu   sync.Mutex
	seen map[string]int
	n    int
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := fn.ReadEvent(r)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.mu.Lock()
	s.seen[e.ID()]++
	s.n++
	s.mu.Unlock()
}

func (s *sink) total() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

func (s *sink) waitTotal(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for s.total() < want {
		if time.Now().After(deadline) {
			t.Fatalf("sink took %d events, want %d", s.total(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produce writes n records to topic, 2 partitions, keyed, stamped at ts.
func produce(t *testing.T, brokers []string, topic string, from, n int, ts time.Time) {
	p := testenv.Producer(t, brokers)
	for i := from; i < from+n; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i % 2)),
			Value: sarama.StringEncoder(fmt.Sprint(i)), Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
}

// A running source is paused, its group moved, and resumed: it delivers
// again from there through its delivery rules; a group with a member is
// refused.
func TestPauseResetResume(t *testing.T) {
	const topic, group = "in", "replay-group"
	brokers := testenv.Kafka(t, 2, topic)
	old, recent := time.Now().Add(-time.Hour).Truncate(time.Millisecond), time.Now().Truncate(time.Millisecond)
	produce(t, brokers, topic, 0, 10, old)
	produce(t, brokers, topic, 10, 10, recent)

	s := &sink{seen: map[string]int{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	src, err := kafkasource.New(kafkasource.Config{Name: "replayed", Namespace: "test", Brokers: brokers, Topics: []string{topic},
		Group: group, InitialOffset: "earliest", Ordered: true, CommitInterval: 100 * time.Millisecond,
		Retrier: kafkasource.Retrier{Policy: delivery.Policy{Retry: 3, Backoff: delivery.Linear, Delay: 100 * time.Millisecond, Timeout: 5 * time.Second}, Target: srv.URL},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	s.waitTotal(t, 20)

	g := replay.Group{ID: group, Topics: []string{topic}}
	if _, err := replay.Reset(ctx, brokers, g, replay.Position{Beginning: true}); !errors.Is(err, replay.ErrGroupActive) {
		t.Fatalf("reset of a group with a member: %v, want ErrGroupActive", err)
	}
	if _, err := replay.Reset(ctx, brokers, g, replay.Position{}); err == nil {
		t.Fatal("a reset to nowhere was taken")
	}

	steps := []struct {
		pos  replay.Position
		want int // events delivered again
	}{
		{replay.Position{Beginning: true}, 20},
		{replay.Position{Time: recent.Add(-time.Minute)}, 10},
		{replay.Position{Offset: ptr(8)}, 4}, // 10 records per partition: offsets 8 and 9 of each
		{replay.Position{Offset: ptr(1000)}, 0},
	}
	for _, st := range steps {
		before := s.total()
		resume, err := src.Pause(ctx)
		if err != nil {
			t.Fatal(err)
		}
		moves, err := replay.Reset(ctx, brokers, g, st.pos)
		if err != nil {
			t.Fatalf("%s: %v", st.pos, err)
		}
		if len(moves) != 2 || moves[0].From != 10 || moves[1].From != 10 {
			t.Fatalf("%s: moves %+v: want 2 partitions, from their end (10) after everything was delivered", st.pos, moves)
		}
		resume()
		s.waitTotal(t, before+st.want)
		// and nothing more: the group ends at the partitions' end again
		time.Sleep(time.Second)
		if got := s.total() - before; got != st.want {
			t.Fatalf("%s: %d events delivered again, want %d", st.pos, got, st.want)
		}
		waitCommitted(t, ctx, brokers, g, 10)
	}
	s.mu.Lock()
	for i := 0; i < 20; i++ {
		if s.seen[fmt.Sprintf("partition:%d/offset:%d", i%2, i/2)] == 0 && s.seen[fmt.Sprintf("partition:%d/offset:%d", 1-i%2, i/2)] == 0 {
			t.Errorf("record %d never delivered", i)
		}
	}
	s.mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func ptr(n int64) *int64 { return &n }

// waitCommitted waits until every partition of g committed want.
func waitCommitted(t *testing.T, ctx context.Context, brokers []string, g replay.Group, want int64) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, replay.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, err := admin.ListConsumerGroupOffsets(g.ID, nil)
		ok := err == nil
		for p := int32(0); ok && p < 2; p++ {
			b := offs.GetBlock(g.Topics[0], p)
			ok = b != nil && b.Offset == want
		}
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("group %s did not commit %d on every partition: %v", g.ID, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
