package tracestore

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Trace is a trace as GET /traces/<id> serves it: its spans by start time,
// each with its offset from the trace's start and its duration, and the
// trace's whole duration.
type Trace struct {
	TraceID    string    `json:"trace_id"`
	Subjects   []string  `json:"subjects,omitempty"`
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"duration_ms"`
	Hops       []Hop     `json:"hops"`
}

// Hop is one span of a trace.
type Hop struct {
	Span
	OffsetMs   float64 `json:"offset_ms"`   // from the trace's start
	DurationMs float64 `json:"duration_ms"` // of the span
	Depth      int     `json:"depth"`       // 0: a root (or a span whose parent is not here)
}

// Build makes the Trace of spans (sorted by start).
func Build(id string, spans []Span) Trace {
	t := Trace{TraceID: id, Hops: []Hop{}}
	if len(spans) == 0 {
		return t
	}
	t.Start = spans[0].Start
	end := spans[0].End
	parent := map[string]string{}
	for _, sp := range spans {
		parent[sp.SpanID] = sp.ParentID
		if sp.End.After(end) {
			end = sp.End
		}
	}
	seen := map[string]bool{}
	for _, sp := range spans {
		depth := 0
		for p := sp.ParentID; p != "" && depth < 64; p = parent[p] {
			if _, ok := parent[p]; !ok {
				break
			}
			depth++
		}
		if s := sp.Attributes[SubjectAttr]; s != "" && !seen[s] {
			seen[s] = true
			t.Subjects = append(t.Subjects, s)
		}
		t.Hops = append(t.Hops, Hop{Span: sp, OffsetMs: ms(sp.Start.Sub(t.Start)), DurationMs: ms(sp.End.Sub(sp.Start)), Depth: depth})
	}
	t.DurationMs = ms(end.Sub(t.Start))
	return t
}

// Find returns the traces of id: the trace whose id it is, if kept, then
// the traces whose spans name it as their subject (a job's, an order's).
func (s *Store) Find(id string) []Trace {
	out := []Trace{}
	if spans := s.Trace(id); len(spans) > 0 {
		out = append(out, Build(id, spans))
	}
	for _, tid := range s.BySubject(id) {
		if tid == id {
			continue
		}
		if spans := s.Trace(tid); len(spans) > 0 {
			out = append(out, Build(tid, spans))
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Handler serves, under /traces:
//
//	GET /traces                 the ids of the latest traces (?limit=, default 50)
//	GET /traces/<trace-id>      one trace (404 if unknown)
//	GET /traces?subject=<id>    the traces of a job (any event subject), as a list
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.Trim(strings.TrimPrefix(r.URL.Path, "/traces"), "/")
		switch {
		case id != "":
			spans := s.Trace(id)
			if len(spans) == 0 {
				writeJSON(w, http.StatusNotFound, map[string]any{"error": "no trace " + id + " (kept: the latest traces only)", "status": 404})
				return
			}
			writeJSON(w, http.StatusOK, Build(id, spans))
		case r.URL.Query().Get("subject") != "":
			out := []Trace{}
			for _, tid := range s.BySubject(r.URL.Query().Get("subject")) {
				out = append(out, Build(tid, s.Trace(tid)))
			}
			writeJSON(w, http.StatusOK, out)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"traces": s.Recent(50)})
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
