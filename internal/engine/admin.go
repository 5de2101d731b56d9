package engine

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/pingsource"
	"github.com/jobflow/jobflow/internal/scaler"
)

// Status is the engine's state, served as JSON on /status.
type Status struct {
	Functions map[string]FunctionStatus    `json:"functions"`
	Sources   map[string]kafkasource.Stats `json:"sources"`
	// Triggers are counted as sources are.
	Triggers map[string]kafkasource.Stats `json:"triggers"`
	Pings    map[string]pingsource.Stats  `json:"pingsources"`
}

// FunctionStatus of one function (or adapter: no Scale).
type FunctionStatus struct {
	URL      string `json:"url"`
	Ready    bool   `json:"ready"` // a function: its activator serves
	Restarts int64  `json:"restarts"`
	// PID of an adapter's process (0: not running); a function's
	// instances list theirs under Scale.
	PID int `json:"pid,omitempty"`
	// Scale: instances, cold starts, requests held by the activator,
	// in-flight per instance.
	Scale *scaler.Status `json:"scale,omitempty"`
}

// Status returns the current status.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{Functions: map[string]FunctionStatus{}, Sources: map[string]kafkasource.Stats{},
		Triggers: map[string]kafkasource.Stats{}, Pings: map[string]pingsource.Stats{}}
	for n, p := range e.pools {
		sc := p.Status()
		st.Functions[n] = FunctionStatus{URL: p.URL(), Ready: p.Ready(), Restarts: p.Restarts(), Scale: &sc}
	}
	for n, p := range e.adapters {
		st.Functions[n] = FunctionStatus{URL: p.URL(), Ready: p.Ready(), Restarts: p.Restarts(), PID: p.Pid()}
	}
	for _, s := range e.sources {
		st.Sources[s.Name()] = s.Stats()
	}
	for _, s := range e.triggers {
		st.Triggers[s.Name()] = s.Stats()
	}
	if e.pings != nil {
		st.Pings = e.pings.Stats()
	}
	return st
}

// startAdmin serves /metrics (Prometheus), /status (JSON) and the live
// console (/) on the admin port until the stack unwinds.
func (e *Engine) startAdmin(stops *stack, brokers []string) error {
	mux := http.NewServeMux()
	con := e.newConsole(brokers)
	con.Register(mux)
	stops.push(con.Close)
	mux.Handle("/metrics", promhttp.Handler())
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, e.Status()) })
	if e.traces != nil {
		mux.Handle("/v1/traces", e.traces.Receiver()) // OTLP/HTTP from the functions
		mux.Handle("/traces", e.traces.Handler())
		mux.Handle("/traces/", e.traces.Handler())
	}
	mux.HandleFunc("POST /replay", e.serveReplay)
	if e.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", e.cfg.AdminPort))
	if err != nil {
		return fmt.Errorf("admin port: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stops.push(func() { _ = srv.Close() })
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
