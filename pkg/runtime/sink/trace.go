package sink

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// writeSpans starts, for each event that carries a trace, the span of its
// write to the store ("<sink> write"): the last hop of its trace, from the
// items handed to the group commit to the commit. A batch's events belong
// to different traces, so each gets its own span over the same write.
// end ends them with the write's outcome.
func (s *Sink[T]) writeSpans(ctx context.Context, in []event.Event) (end func(error)) {
	var spans []trace.Span
	for i := range in {
		if !tracing.HasParent(&in[i]) {
			continue
		}
		parent := ctx
		if !trace.SpanContextFromContext(ctx).IsValid() || len(in) > 1 {
			parent = tracing.FromEvent(ctx, &in[i]) // a batch: each event's own trace
		}
		_, span := tracing.Start(parent, s.name+" write", trace.SpanKindClient, in[i].Subject(),
			attribute.String("db.operation.name", "write"), attribute.Int("jobflow.batch.events", len(in)))
		spans = append(spans, span)
	}
	return func(err error) {
		for _, span := range spans {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
}
