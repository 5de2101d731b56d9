package kafkasource

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"
)

func TestCounterDerivesTheStatsFromWhatItHears(t *testing.T) {
	var c counter
	m := &sarama.ConsumerMessage{}
	for range 5 {
		c.Received(m)
	}
	c.Attempted("sink", 3, Attempt{Status: 202})
	c.Attempted("sink", 1, Attempt{Status: 503, Err: errors.New("unavailable")})
	c.Attempted("sink", 2, Attempt{Status: 400, Err: errors.New("invalid")})
	c.Finished(m, Result{Outcome: Delivered})
	c.Finished(m, Result{Outcome: DeadLettered})
	c.Finished(m, Result{Outcome: Dropped})
	c.Finished(m, Result{Outcome: Aborted})
	want := Stats{Delivered: 1, DeadLettered: 1, Dropped: 1, Attempts: 3, Failures: 2, InFlight: 1, Batches: 2, BatchFallbacks: 1}
	if got := c.stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}
