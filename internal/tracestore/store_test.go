package tracestore

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// Spans received over OTLP/HTTP are served by trace id and by subject,
// with offsets and depths; old traces are evicted.
func TestReceiveAndServe(t *testing.T) {
	s := New(2)
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", s.Receiver())
	mux.Handle("/traces", s.Handler())
	mux.Handle("/traces/", s.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tid := bytes.Repeat([]byte{1}, 16)
	span := func(id, parent byte, name string, from, to time.Duration) *tracepb.Span {
		sp := &tracepb.Span{TraceId: tid, SpanId: bytes.Repeat([]byte{id}, 8), Name: name,
			StartTimeUnixNano: uint64(t0.Add(from).UnixNano()), EndTimeUnixNano: uint64(t0.Add(to).UnixNano()),
			Attributes: []*commonpb.KeyValue{str(SubjectAttr, "job-1")}}
		if parent != 0 {
			sp.ParentSpanId = bytes.Repeat([]byte{parent}, 8)
		}
		return sp
	}
	req := &coltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "receiver")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span(2, 1, "emit default", 2*time.Millisecond, 5*time.Millisecond), span(1, 0, "receiver", 0, 6*time.Millisecond)}}},
	}}}
	body, _ := proto.Marshal(req)
	resp, err := http.Post(srv.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("export: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, _ := http.Post(srv.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader([]byte("junk"))); resp.StatusCode != 400 {
		t.Errorf("junk: %d, want 400", resp.StatusCode)
	}

	var got []Trace
	getJSON(t, srv.URL+"/traces?subject=job-1", &got)
	if len(got) != 1 || len(got[0].Hops) != 2 {
		t.Fatalf("by subject: %+v", got)
	}
	root, emit := got[0].Hops[0], got[0].Hops[1]
	if root.Name != "receiver" || root.Depth != 0 || root.Service != "receiver" || emit.Depth != 1 || emit.OffsetMs != 2 || emit.DurationMs != 3 || got[0].DurationMs != 6 {
		t.Errorf("hops: %+v", got[0].Hops)
	}
	var one Trace
	getJSON(t, srv.URL+"/traces/"+got[0].TraceID, &one)
	if one.TraceID != got[0].TraceID || len(one.Hops) != 2 {
		t.Errorf("by id: %+v", one)
	}
	if resp, _ := http.Get(srv.URL + "/traces/00ff"); resp.StatusCode != 404 {
		t.Errorf("unknown trace: %d, want 404", resp.StatusCode)
	}

	s.Add(Span{TraceID: "b", SpanID: "1"}, Span{TraceID: "c", SpanID: "1"})
	if len(s.Trace(got[0].TraceID)) != 0 || len(s.BySubject("job-1")) != 0 {
		t.Errorf("the oldest trace was kept beyond the limit")
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
