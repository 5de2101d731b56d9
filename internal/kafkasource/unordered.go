package kafkasource

import (
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// unordered is Knative's unordered delivery: the records of all partitions
// are delivered in parallel, at most MaxInFlight at a time, and a
// partition's committed offset only moves past records that finished
// (offsets.go), so a crash redelivers what was in flight. With batching
// (batch.go) the records already waiting in a partition's queue go out in
// one request.
type unordered struct {
	dispatcher
	slots chan struct{} // one per record in flight, across all partitions
	batch *batcher      // nil: one record per request
}

func (u *unordered) consume(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) {
	ctx := sess.Context()
	offsets := newOffsetTracker()
	// finished takes a record of this claim whose delivery finished.
	finished := func(m *sarama.ConsumerMessage) {
		if next, moved := offsets.finish(m.Offset); moved {
			sess.MarkOffset(m.Topic, m.Partition, next, "")
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, ok := next(ctx, claim)
		if !ok {
			return
		}
		e, done := u.screen(ctx, m)
		if done {
			offsets.add(m.Offset)
			finished(m)
			continue
		}
		if !acquire(ctx, u.slots) {
			return
		}
		batching := u.batch.on()
		if batching && !acquire(ctx, u.batch.requests) {
			<-u.slots
			return
		}
		msgs, closed := u.gather(claim, m, batching)
		start := time.Now()
		for _, m := range msgs {
			offsets.add(m.Offset)
			u.listener.Received(m)
		}
		wg.Go(func() {
			defer u.release(msgs, batching)
			if len(msgs) == 1 {
				if u.deliver(ctx, msgs[0], e, start) { // e: nil but for a Trigger (never batched)
					finished(msgs[0])
				}
				return
			}
			u.deliverBatch(ctx, msgs, start, finished)
		})
		if closed {
			return
		}
	}
}

// release gives back the slots that msgs (and their batch request) held.
func (u *unordered) release(msgs []*sarama.ConsumerMessage, batching bool) {
	for range msgs {
		<-u.slots
	}
	if batching {
		<-u.batch.requests
	}
}
