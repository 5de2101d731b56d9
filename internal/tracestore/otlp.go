package tracestore

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Receiver is the OTLP/HTTP traces endpoint (POST /v1/traces, protobuf or
// JSON), storing what it receives.
func (s *Store) Receiver() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST OTLP traces", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltrace.ExportTraceServiceRequest
		isJSON := strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
		if isJSON {
			err = protojson.Unmarshal(body, &req)
		} else {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("not an OTLP ExportTraceServiceRequest: %v", err), http.StatusBadRequest)
			return
		}
		s.Add(fromOTLP(&req)...)
		resp := &coltrace.ExportTraceServiceResponse{}
		var out []byte
		if isJSON {
			w.Header().Set("Content-Type", "application/json")
			out, _ = protojson.Marshal(resp)
		} else {
			w.Header().Set("Content-Type", "application/x-protobuf")
			out, _ = proto.Marshal(resp)
		}
		_, _ = w.Write(out)
	})
}

func fromOTLP(req *coltrace.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				span := Span{
					TraceID: hexID(sp.GetTraceId()), SpanID: hexID(sp.GetSpanId()), Service: service, Name: sp.GetName(),
					Kind:  strings.ToLower(strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_")),
					Start: time.Unix(0, int64(sp.GetStartTimeUnixNano())), End: time.Unix(0, int64(sp.GetEndTimeUnixNano())),
					Attributes: attrs(sp.GetAttributes()),
				}
				if len(sp.GetParentSpanId()) > 0 {
					span.ParentID = hexID(sp.GetParentSpanId())
				}
				if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
					span.Error = sp.GetStatus().GetMessage()
					if span.Error == "" {
						span.Error = "error"
					}
				}
				out = append(out, span)
			}
		}
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(x.IntValue)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = fmt.Sprint(x.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = fmt.Sprint(x.DoubleValue)
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

// Processor is a span processor that stores the process's own spans as
// they end (the engine's: ingresses and deliveries), under service.
func (s *Store) Processor(service string) sdktrace.SpanProcessor { return processor{s, service} }

type processor struct {
	s       *Store
	service string
}

func (p processor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p processor) Shutdown(context.Context) error                  { return nil }
func (p processor) ForceFlush(context.Context) error                { return nil }

func (p processor) OnEnd(ro sdktrace.ReadOnlySpan) {
	sc := ro.SpanContext()
	span := Span{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Service: p.service, Name: ro.Name(),
		Kind: ro.SpanKind().String(), Start: ro.StartTime(), End: ro.EndTime()}
	if ro.Parent().IsValid() {
		span.ParentID = ro.Parent().SpanID().String()
	}
	if ro.Status().Code == codes.Error {
		span.Error = ro.Status().Description
		if span.Error == "" {
			span.Error = "error"
		}
	}
	if kvs := ro.Attributes(); len(kvs) > 0 {
		span.Attributes = make(map[string]string, len(kvs))
		for _, kv := range kvs {
			span.Attributes[string(kv.Key)] = kv.Value.String()
		}
	}
	p.s.Add(span)
}
