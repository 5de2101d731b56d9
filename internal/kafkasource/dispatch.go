package kafkasource

import (
	"context"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Deliverer delivers one event and says how its delivery ended. It is the
// seam between the dispatchers, which read partitions and keep their order
// and offsets, and what delivering means: for a KafkaSource, the Retrier
// (a Sender with retries and a dead-letter sink); for a Trigger, a filter
// in front of it and the reply sent back to the broker.
type Deliverer interface {
	Deliver(ctx context.Context, e *event.Event) (Outcome, Attempt)
}

// claimConsumer is an ordered or unordered dispatcher: it delivers the
// records of one claim (a partition, for one session of the group) and
// marks in the session the offsets it may commit, until the claim or the
// session ends.
type claimConsumer interface {
	consume(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim)
}

// dispatcher is what the dispatchers share: a record becomes its event
// (ToEvent, or BrokerEvent for a Trigger), goes to the deliverer, and the
// listener hears how it ended.
type dispatcher struct {
	deliverer Deliverer
	listener  Listener
	// namespace and source name the events of records that are not
	// CloudEvents (see ToEvent).
	namespace, source string
	// broker: the records are a broker's events (BrokerEvent), screened
	// by filter before they are dispatched (screen).
	broker bool
	filter Matcher // nil: every event passes
	// headers: filter's screen on a record's headers, when it has one.
	headers HeaderScreen
}

// screen is a Trigger's first step, taken in the partition's reader before
// a record is dispatched: the record's event, or done when the record is
// finished already (it is not a CloudEvent, or the filter does not match
// it), which screen reports to the listener. Screening in the reader costs
// a filtered record (most records, for most triggers of a broker) no
// goroutine and no delivery slot, and a filter with a header screen
// refuses most of them before their event is even built. A KafkaSource
// screens nothing.
func (d *dispatcher) screen(ctx context.Context, m *sarama.ConsumerMessage) (*event.Event, bool) {
	if !d.broker {
		return nil, false
	}
	start := time.Now()
	r := Result{Outcome: Filtered}
	if d.headers == nil || !d.headers.Rejects(m.Headers) {
		e, err := BrokerEvent(ctx, m)
		switch {
		case err != nil:
			r = Result{Outcome: Dropped, Last: Attempt{Err: err}}
		case d.filter == nil || d.filter.Match(ctx, e):
			return e, false
		}
	}
	d.listener.Received(m)
	r.Took = time.Since(start)
	d.listener.Finished(m, r)
	return nil, true
}

// event maps m to the event to deliver.
func (d *dispatcher) event(ctx context.Context, m *sarama.ConsumerMessage) (*event.Event, error) {
	if d.broker {
		return BrokerEvent(ctx, m)
	}
	return ToEvent(ctx, m, d.namespace, d.source)
}

// deliver delivers m, received at start, as e (nil: mapped here), and
// reports how it ended; false means it was not finished (the session
// ended): it is delivered again.
func (d *dispatcher) deliver(ctx context.Context, m *sarama.ConsumerMessage, e *event.Event, start time.Time) bool {
	if e == nil {
		var err error
		if e, err = d.event(ctx, m); err != nil {
			d.listener.Finished(m, Result{Outcome: Dropped, Last: Attempt{Err: err}, Took: time.Since(start)})
			return true
		}
	}
	ctx, endSpan := deliverySpan(ctx, d.source, m, e)
	o, last := d.deliverer.Deliver(ctx, e)
	endSpan(o, last)
	d.listener.Finished(m, Result{Outcome: o, Last: last, Took: time.Since(start)})
	return o != Aborted
}

// next waits for the claim's next record; ok is false once the claim or
// ctx ended.
func next(ctx context.Context, claim sarama.ConsumerGroupClaim) (m *sarama.ConsumerMessage, ok bool) {
	select {
	case <-ctx.Done():
		return nil, false
	case m, ok = <-claim.Messages():
		return m, ok
	}
}

// acquire takes a slot of sem; false when ctx ended first.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}
