package kafkasource

import (
	"context"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// deliverySpan starts the span of a record's delivery (retries and the
// dead-letter sink included), as a child of the
// trace its event carries (ce_traceparent); the attempts carry it on as
// their traceparent header. An event outside any trace starts none. The
// record's wait in Kafka is the gap between its ingress span and this one.
func deliverySpan(ctx context.Context, source string, m *sarama.ConsumerMessage, e *event.Event) (context.Context, func(Outcome, Attempt)) {
	if !tracing.HasParent(e) {
		return ctx, func(Outcome, Attempt) {}
	}
	ctx, span := tracing.Start(tracing.FromEvent(ctx, e), "deliver "+source, trace.SpanKindConsumer, e.Subject(),
		attribute.String("messaging.destination.name", m.Topic),
		attribute.String("messaging.kafka.offset", strconv.FormatInt(m.Offset, 10)),
		attribute.Int("messaging.destination.partition.id", int(m.Partition)),
		attribute.String("cloudevents.event_type", e.Type()))
	return ctx, func(o Outcome, last Attempt) {
		span.SetAttributes(attribute.String("jobflow.outcome", o.String()), attribute.Int("http.response.status_code", last.Status))
		if o != Delivered && o != Filtered {
			span.SetStatus(codes.Error, o.String())
		}
		span.End()
	}
}
