// Package tracestore keeps the engine's recent traces in memory: spans of
// its own (a span processor) and of the function processes (an OTLP/HTTP
// receiver, POST /v1/traces), served as JSON by trace id or by the subject
// (a job's id) a span names, with the time spent at each hop.
package tracestore

import (
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

// Span is one finished span.
type Span struct {
	TraceID    string            `json:"trace_id"`
	SpanID     string            `json:"span_id"`
	ParentID   string            `json:"parent_id,omitempty"`
	Service    string            `json:"service"`
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Error      string            `json:"error,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Store holds the spans of up to max traces; the oldest trace goes first.
type Store struct {
	max int

	mu        sync.Mutex
	traces    map[string][]Span
	order     []string            // trace ids, oldest first
	bySubject map[string][]string // subject → trace ids
	subjects  map[string][]string // trace id → its subjects
}

// New returns a store of up to maxTraces traces.
func New(maxTraces int) *Store {
	if maxTraces < 1 {
		maxTraces = 1000
	}
	return &Store{max: maxTraces, traces: map[string][]Span{}, bySubject: map[string][]string{}, subjects: map[string][]string{}}
}

// SubjectAttr is the span attribute indexed for lookups by subject.
const SubjectAttr = "jobflow.subject"

// Add stores spans.
func (s *Store) Add(spans ...Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		if _, ok := s.traces[sp.TraceID]; !ok {
			s.order = append(s.order, sp.TraceID)
			s.evictLocked()
		}
		s.traces[sp.TraceID] = append(s.traces[sp.TraceID], sp)
		if subj := sp.Attributes[SubjectAttr]; subj != "" && !slices.Contains(s.subjects[sp.TraceID], subj) {
			s.subjects[sp.TraceID] = append(s.subjects[sp.TraceID], subj)
			s.bySubject[subj] = append(s.bySubject[subj], sp.TraceID)
		}
	}
}

func (s *Store) evictLocked() {
	for len(s.order) > s.max {
		id := s.order[0]
		s.order = s.order[1:]
		for _, subj := range s.subjects[id] {
			ids := slices.DeleteFunc(s.bySubject[subj], func(t string) bool { return t == id })
			if len(ids) == 0 {
				delete(s.bySubject, subj)
			} else {
				s.bySubject[subj] = ids
			}
		}
		delete(s.subjects, id)
		delete(s.traces, id)
	}
}

// Trace returns the spans of a trace, by start time.
func (s *Store) Trace(id string) []Span {
	s.mu.Lock()
	spans := slices.Clone(s.traces[id])
	s.mu.Unlock()
	slices.SortStableFunc(spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return spans
}

// BySubject returns the ids of the traces whose spans name subject.
func (s *Store) BySubject(subject string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bySubject[subject])
}

// Recent returns the ids of the last n traces, newest first.
func (s *Store) Recent(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for i := len(s.order) - 1; i >= 0 && len(ids) < n; i-- {
		ids = append(ids, s.order[i])
	}
	return ids
}

func hexID(b []byte) string { return hex.EncodeToString(b) }
