package kafkasource

import (
	"time"

	"github.com/IBM/sarama"
)

// ordered is Knative's ordered delivery: one record in flight per
// partition, the next sent only once the one before it finished
// (delivered, dead-lettered or dropped), so a key's events arrive in order.
type ordered struct{ dispatcher }

func (o *ordered) consume(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) {
	ctx := sess.Context()
	for {
		m, ok := next(ctx, claim)
		if !ok {
			return
		}
		if e, done := o.screen(ctx, m); !done {
			o.listener.Received(m)
			if !o.deliver(ctx, m, e, time.Now()) {
				return // redelivered by the next session, from the committed offset
			}
		}
		sess.MarkMessage(m, "")
	}
}
