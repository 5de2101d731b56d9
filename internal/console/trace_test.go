package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/tracestore"
)

// The lookup's trace comes from the engine's trace store: by the id of a
// trace, or by a job's id as its spans' subject, hops with their offsets
// and durations; the graph tells the page that traces are kept.
func TestTraceOfAnID(t *testing.T) {
	store := tracestore.New(10)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	subj := map[string]string{tracestore.SubjectAttr: "job-1"}
	store.Add(
		tracestore.Span{TraceID: "trace-1", SpanID: "a", Service: "receiver", Name: "receiver", Start: t0, End: t0.Add(40 * time.Millisecond), Attributes: subj},
		tracestore.Span{TraceID: "trace-1", SpanID: "b", ParentID: "a", Service: "pgsink", Name: "pgsink write", Start: t0.Add(30 * time.Millisecond), End: t0.Add(50 * time.Millisecond)},
		tracestore.Span{TraceID: "trace-2", SpanID: "c", Service: "receiver", Name: "receiver", Start: t0, End: t0.Add(time.Millisecond)},
	)
	c := New(Config{Plan: repositoryPlan(t), Brokers: []string{"127.0.0.1:1"}, Sample: func() Sample { return Sample{} }, Traces: store.Find})
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); c.Close() })

	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var graph struct{ Traces bool }
	get("/api/console/graph", &graph)
	if !graph.Traces {
		t.Error("graph: traces false with a trace store")
	}
	var ans struct {
		ID     string
		Traces []tracestore.Trace
	}
	get("/api/console/trace?id=job-1", &ans)
	if ans.ID != "job-1" || len(ans.Traces) != 1 || ans.Traces[0].TraceID != "trace-1" || len(ans.Traces[0].Hops) != 2 {
		t.Fatalf("by subject: %+v", ans)
	}
	w := ans.Traces[0].Hops[1]
	if w.Name != "pgsink write" || w.OffsetMs != 30 || w.DurationMs != 20 || w.Depth != 1 || ans.Traces[0].DurationMs != 50 {
		t.Errorf("the write's hop: %+v (trace %v ms)", w, ans.Traces[0].DurationMs)
	}
	get("/api/console/trace?id=trace-2", &ans)
	if len(ans.Traces) != 1 || ans.Traces[0].TraceID != "trace-2" {
		t.Errorf("by trace id: %+v", ans)
	}
	get("/api/console/trace?id=nobody", &ans)
	if ans.Traces == nil || len(ans.Traces) != 0 {
		t.Errorf("unknown id: %+v, want an empty list", ans)
	}
}
