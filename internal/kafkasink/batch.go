package kafkasink

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// serveBatch takes a CloudEvents batch for s: every event is checked and
// encoded before anything is written, so an invalid one refuses the whole
// batch with a 400 naming it (the sender then sends the events one by one,
// and only the invalid one is refused again); the valid batch is written
// with one produce (sarama's SendMessages) and answered 202 once Kafka
// acknowledged all of it, 503 otherwise (the sender sends it again, or
// event by event: a record written twice is a duplicate that Knative's
// contract allows).
func (in *Ingress) serveBatch(w http.ResponseWriter, r *http.Request, s Sink) {
	events, err := fn.ReadEvents(r)
	if err != nil {
		in.produced.WithLabelValues(s.Name, "invalid").Inc()
		fn.WriteError(w, in.readError(err))
		return
	}
	pms := make([]*sarama.ProducerMessage, len(events))
	for i := range events {
		if pms[i], err = s.record(r.Context(), &events[i]); err != nil {
			in.produced.WithLabelValues(s.Name, "invalid").Add(float64(len(events)))
			fn.WriteError(w, fn.Invalid(fmt.Errorf("event %d of the batch: %w", i, err)))
			return
		}
	}
	if len(pms) > 0 {
		if err := in.producer.SendMessages(pms); err != nil {
			in.produced.WithLabelValues(s.Name, "error").Add(float64(len(pms)))
			in.log.Warn("batch produce failed", strings.ToLower(in.kind), s.Name, "topic", s.Topic, "events", len(pms), "err", err)
			fn.WriteError(w, fn.Unavailable(fmt.Errorf("write a batch of %d to topic %s: %w", len(pms), s.Topic, err)))
			return
		}
	}
	in.produced.WithLabelValues(s.Name, "ok").Add(float64(len(pms)))
	w.WriteHeader(http.StatusAccepted)
}
