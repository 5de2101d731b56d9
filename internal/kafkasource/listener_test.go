package kafkasource_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// recorder is a Listener that keeps what it heard.
type recorder struct {
	mu       sync.Mutex
	received map[string]int
	finished map[string][]kafkasource.Outcome
	attempts map[string]int // by target
}

func newRecorder() *recorder {
	return &recorder{received: map[string]int{}, finished: map[string][]kafkasource.Outcome{}, attempts: map[string]int{}}
}

func (r *recorder) Received(m *sarama.ConsumerMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received[string(m.Value)]++
}

func (r *recorder) Attempted(target string, _ int, _ kafkasource.Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[target]++
}

func (r *recorder) Finished(m *sarama.ConsumerMessage, res kafkasource.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished[string(m.Value)] = append(r.finished[string(m.Value)], res.Outcome)
}

// The source's Stats and a listener of its own hear the same outcomes,
// once per record, in both dispatchers.
func TestAListenerHearsEachOutcomeOnceAsTheStatsDo(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			brokers := testenv.Kafka(t, 2, "in")
			sink := newSink(t, func(v string, n int) (int, time.Duration) {
				switch {
				case v == "l-3":
					return 400, 0 // refused: dead-lettered
				case v == "l-5" && n == 0:
					return 503, 0 // retried once
				}
				return 202, 0
			})
			dls := newSink(t, nil)
			values := produce(t, brokers, "in", "l", 40, 5)
			rec := newRecorder()
			src := start(t, kafkasource.Config{Brokers: brokers, Topics: []string{"in"}, Group: "g", Ordered: ordered, MaxInFlight: 8,
				Retrier:  kafkasource.Retrier{Policy: policy(3, delivery.Linear, 10*time.Millisecond, 5*time.Second), Target: sink.srv.URL, DeadLetter: dls.srv.URL},
				Listener: rec})
			waitFor(t, "39 delivered, 1 dead-lettered", 30*time.Second, func() bool {
				s := src.Stats()
				return s.Delivered == 39 && s.DeadLettered == 1 && s.InFlight == 0
			})
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, v := range values {
				want := kafkasource.Delivered
				if v == "l-3" {
					want = kafkasource.DeadLettered
				}
				if got := rec.finished[v]; rec.received[v] != 1 || len(got) != 1 || got[0] != want {
					t.Errorf("%s: received %d times, finished %v; want once, %s", v, rec.received[v], got, want)
				}
			}
			st := src.Stats()
			if heard := rec.attempts[sink.srv.URL] + rec.attempts[dls.srv.URL]; int64(heard) != st.Attempts || heard != 42 {
				t.Errorf("attempts: the listener heard %d, the Stats say %d; want 40 + a retry + a dead letter", heard, st.Attempts)
			}
			if st.Failures != 2 {
				t.Errorf("failures %d, want 2 (the 400 and the 503)", st.Failures)
			}
		})
	}
}
