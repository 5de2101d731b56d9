// Package tracing is jobflow's one way to trace: OpenTelemetry spans whose
// context travels as the W3C traceparent, in HTTP headers between
// processes and in the CloudEvents distributed-tracing extension
// (traceparent, tracestate) on events, so in Kafka records as the
// ce_traceparent header. One job is one trace from its HTTP request to its
// database writes.
//
// Setup installs the process's tracer provider: spans are exported over
// OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and handed to any extra span
// processor (the engine keeps recent traces in memory). Without Setup the
// global provider records nothing and the helpers only pass the context on.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// The CloudEvents distributed-tracing extension's attributes.
const (
	ExtTraceparent = "traceparent"
	ExtTracestate  = "tracestate"
)

// AttrSubject names the event's subject (a job's id) on spans, so a trace
// can be found by it.
const AttrSubject = "jobflow.subject"

var propagator = propagation.TraceContext{}

// Endpoint is the OTLP endpoint the environment names, or "".
func Endpoint() string {
	if v := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		return v
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
}

// Setup installs the global tracer provider of the process service (the
// OpenTelemetry service.name) and the W3C propagator. The provider exports
// over OTLP/HTTP when Endpoint is set and feeds the extra processors; with
// neither it installs nothing. The returned shutdown flushes what is left.
func Setup(ctx context.Context, service string, extra ...sdktrace.SpanProcessor) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagator)
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service)))}
	if Endpoint() != "" {
		exp, err := otlptracehttp.New(ctx) // reads the OTEL_EXPORTER_OTLP_* variables
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	} else if len(extra) == 0 {
		return func(context.Context) error { return nil }, nil
	}
	for _, p := range extra {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Tracer is jobflow's tracer from the global provider.
func Tracer() trace.Tracer { return otel.Tracer("github.com/jobflow/jobflow") }

// Start starts a span named name as a child of ctx's span, with the
// subject attribute when subject is set.
func Start(ctx context.Context, name string, kind trace.SpanKind, subject string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if subject != "" {
		attrs = append(attrs, attribute.String(AttrSubject, subject))
	}
	return Tracer().Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// FromEvent returns ctx carrying the span context of e's traceparent
// extension as the remote parent (ctx unchanged if e has none).
func FromEvent(ctx context.Context, e *event.Event) context.Context {
	return propagator.Extract(ctx, eventCarrier{e})
}

// ToEvent sets e's traceparent and tracestate from ctx's span (nothing if
// ctx has no valid span context).
func ToEvent(ctx context.Context, e *event.Event) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, eventCarrier{e})
	}
}

// HasParent reports whether e carries a traceparent.
func HasParent(e *event.Event) bool {
	_, ok := e.Extensions()[ExtTraceparent]
	return ok
}

// FromHeader returns ctx carrying the span context of h's traceparent.
func FromHeader(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// ToHeader sets h's traceparent and tracestate from ctx's span.
func ToHeader(ctx context.Context, h http.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// eventCarrier reads and writes the tracing extension of an event.
type eventCarrier struct{ e *event.Event }

func (c eventCarrier) Get(key string) string {
	if v, ok := c.e.Extensions()[key]; ok {
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprint(v)
	}
	return ""
}

func (c eventCarrier) Set(key, value string) { c.e.SetExtension(key, value) }

func (c eventCarrier) Keys() []string { return []string{ExtTraceparent, ExtTracestate} }
