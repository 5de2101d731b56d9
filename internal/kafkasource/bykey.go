package kafkasource

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
)

// byKey is jobflow's delivery in order by key (jobflow.dev/delivery.order:
// key; knative/eventing#3188): the records of one Kafka record key are
// delivered one at a time, in partition order, while records of different
// keys of the same partition go in parallel, at most MaxInFlight at a time
// across all partitions. Records without a key (or with an empty one) all
// share the empty key: they are delivered in order among themselves.
//
// As with unordered delivery, a partition's committed offset only moves
// past records that finished (offsets.go), so a crash redelivers what was
// in flight or waiting, never skips it. A key's records that wait behind
// the one in flight are capped per partition (queuedPerMaxInFlight ×
// MaxInFlight), so a hot key cannot make a partition read without bound.
type byKey struct {
	dispatcher
	slots     chan struct{} // one per delivery in flight, across all partitions
	maxQueued int           // records taken from one partition and not finished
}

// queuedPerMaxInFlight sizes the records a partition may hold waiting.
const queuedPerMaxInFlight = 4

func newByKey(d dispatcher, maxInFlight int) *byKey {
	return &byKey{dispatcher: d, slots: make(chan struct{}, maxInFlight), maxQueued: queuedPerMaxInFlight * maxInFlight}
}

// received is a record, its event when screened (nil: mapped when
// delivered), and when it was taken from its partition.
type received struct {
	m  *sarama.ConsumerMessage
	e  *event.Event
	at time.Time
}

// keyQueues are the records of one claim waiting per key; a key is present
// while a goroutine delivers its records.
type keyQueues struct {
	mu     sync.Mutex
	queues map[string][]received
}

// push queues r under key and reports whether the key had no goroutine yet.
func (q *keyQueues) push(key string, r received) (first bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting, running := q.queues[key]
	q.queues[key] = append(waiting, r)
	return !running
}

// pop takes the key's next record; false (and the key forgotten) when none.
func (q *keyQueues) pop(key string) (received, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := q.queues[key]
	if len(waiting) == 0 {
		delete(q.queues, key)
		return received{}, false
	}
	q.queues[key] = waiting[1:]
	return waiting[0], true
}

func (b *byKey) consume(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) {
	ctx := sess.Context()
	offsets := newOffsetTracker()
	queued := make(chan struct{}, b.maxQueued)
	// commit takes a record of this claim that finished; finished, one
	// that was queued.
	commit := func(m *sarama.ConsumerMessage) {
		if next, moved := offsets.finish(m.Offset); moved {
			sess.MarkOffset(m.Topic, m.Partition, next, "")
		}
	}
	finished := func(m *sarama.ConsumerMessage) {
		<-queued
		commit(m)
	}
	keys := &keyQueues{queues: map[string][]received{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, ok := next(ctx, claim)
		if !ok {
			return
		}
		e, done := b.screen(ctx, m)
		if done {
			offsets.add(m.Offset)
			commit(m)
			continue
		}
		if !acquire(ctx, queued) {
			return
		}
		offsets.add(m.Offset)
		b.listener.Received(m)
		key := string(m.Key)
		if keys.push(key, received{m, e, time.Now()}) {
			wg.Go(func() { b.drain(ctx, keys, key, finished) })
		}
	}
}

// drain delivers the records of key one after the other until none waits.
// Once one was not finished (the session ended), the key's later records
// are not delivered either: they would overtake it when it is delivered
// again.
func (b *byKey) drain(ctx context.Context, keys *keyQueues, key string, finished func(*sarama.ConsumerMessage)) {
	stopped := false
	for {
		r, ok := keys.pop(key)
		if !ok {
			return
		}
		if stopped || !acquire(ctx, b.slots) {
			stopped = true
			b.listener.Finished(r.m, Result{Outcome: Aborted, Took: time.Since(r.at)})
			continue
		}
		delivered := b.deliver(ctx, r.m, r.e, r.at)
		<-b.slots
		if !delivered {
			stopped = true
			continue
		}
		finished(r.m)
	}
}
