package fn

import (
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// traced gives each request a server span named after the function, a
// child of the request's traceparent. A request without one starts a trace
// only at an entry point (an HTTP function: where a job comes in); a
// CloudEvent function continues the trace its event carries (see
// eventSpan).
func traced(name string, entry bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.FromHeader(r.Context(), r.Header)
		if !entry && !trace.SpanContextFromContext(ctx).IsValid() {
			next.ServeHTTP(w, r)
			return
		}
		ctx, span := tracing.Start(ctx, name, trace.SpanKindServer, "",
			attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
	})
}

// eventSpan names the event's subject on the request's span, or, when the
// request carried no traceparent header but the event carries the
// distributed-tracing extension (a sender that does not set the header),
// starts the function's span from the event. end ends what it started.
func eventSpan(r *http.Request, name string, e *event.Event) (req *http.Request, end func(err error)) {
	if span := trace.SpanFromContext(r.Context()); span.SpanContext().IsValid() {
		span.SetAttributes(attribute.String(tracing.AttrSubject, e.Subject()), attribute.String("cloudevents.event_type", e.Type()))
		return r, func(error) {}
	}
	if !tracing.HasParent(e) {
		return r, func(error) {}
	}
	ctx, span := tracing.Start(tracing.FromEvent(r.Context(), e), name, trace.SpanKindServer, e.Subject(),
		attribute.String("cloudevents.event_type", e.Type()))
	return r.WithContext(ctx), func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
