package kafkasink

import (
	"context"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// traceHop starts the ingress's span of an event that belongs to a trace
// (traceparent header, else the event's extension) and makes the event
// carry it into the record (ce_traceparent), so the trace goes on from
// Kafka. An event outside any trace gets a span that records nothing.
func traceHop(r *http.Request, kind string, s Sink, e *event.Event) trace.Span {
	ctx := tracing.FromHeader(r.Context(), r.Header)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if !tracing.HasParent(e) {
			return trace.SpanFromContext(context.Background())
		}
		ctx = tracing.FromEvent(ctx, e)
	}
	ctx, span := tracing.Start(ctx, kind+" "+s.Name, trace.SpanKindProducer, e.Subject(),
		attribute.String("messaging.destination.name", s.Topic), attribute.String("cloudevents.event_type", e.Type()))
	tracing.ToEvent(ctx, e)
	return span
}
