// Package console is the engine's live web console, served on its admin
// port: the flow of the running plan drawn from the manifests, with live
// rates, in-flight counts, instances, cold starts and errors pushed to the
// page over one Server-Sent Events stream; dead letters per destination;
// a browser of the latest records of a topic with their CloudEvent
// attributes decoded; and a lookup of one id (a job, an order) across the
// plan's topics, with its trace drawn as a waterfall of hops. The page is
// plain HTML, JavaScript and CSS embedded in the binary.
package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/tracestore"
)

//go:embed web
var web embed.FS

// Sample is the engine's state at one moment.
type Sample struct {
	// Status is what /status serves, sent to the page as it is.
	Status any
	// Counts are running totals named as the graph's edges name them
	// (<kind>/<name>/delivered, .../taken, .../in_flight, .../dead_lettered
	// of sources, triggers and PingSources); the console adds the
	// ingresses' own (sink/<name>/accepted, broker/<name>/accepted).
	Counts map[string]int64
}

// Config of a console.
type Config struct {
	Plan    *plan.Plan
	Brokers []string      // Kafka bootstrap servers
	Sample  func() Sample // the engine's state now
	// Interval between two samples while a page is open (1s when zero).
	Interval time.Duration
	// Redrive, when set, sends the dead letters of the given ids back to
	// their destination (see internal/dlq); nil: the page has no button.
	Redrive Redriver
	// Traces, when set, returns the kept traces of an id (a trace id, or
	// a job's or an order's as its events' subject); nil: the engine
	// keeps no traces and the lookup shows none.
	Traces func(id string) []tracestore.Trace
	Log    *slog.Logger
}

// Console serves the page and its API.
type Console struct {
	cfg   Config
	graph Graph
	hub   *hub
	kafka *reader
}

// New returns the console of a running plan; Close ends its stream and
// its Kafka client.
func New(cfg Config) *Console {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, graph: NewGraph(cfg.Plan), kafka: newReader(cfg.Brokers)}
	c.hub = newHub(cfg.Interval, c.sample)
	return c
}

// Close stops the stream and closes the Kafka client.
func (c *Console) Close() {
	c.hub.close()
	c.kafka.close()
}

// Register adds the console's routes to mux: / (the page), /console/
// (its files) and /api/console/....
func (c *Console) Register(mux *http.ServeMux) {
	files, _ := fs.Sub(web, "web")
	static := http.FileServerFS(files)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/"
		static.ServeHTTP(w, r)
	})
	mux.Handle("GET /console/", http.StripPrefix("/console", static))
	mux.HandleFunc("GET /api/console/graph", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"graph": c.graph, "redrive": c.cfg.Redrive != nil, "traces": c.cfg.Traces != nil})
	})
	mux.HandleFunc("GET /api/console/stream", c.hub.serve)
	mux.HandleFunc("GET /api/console/topics", c.topics)
	mux.HandleFunc("GET /api/console/topics/{topic}", c.topic)
	mux.HandleFunc("GET /api/console/lookup", c.lookup)
	mux.HandleFunc("GET /api/console/trace", c.trace)
	mux.HandleFunc("GET /api/console/dead-letters", c.deadLetters)
	mux.HandleFunc("POST /api/console/dead-letters/redrive", c.redrive)
}

// sample is the engine's sample with the ingresses' counts added.
func (c *Console) sample() Sample {
	s := c.cfg.Sample()
	if s.Counts == nil {
		s.Counts = map[string]int64{}
	}
	ingressCounts(s.Counts)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers a JSON error with a reason.
func fail(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, map[string]any{"error": reason, "status": status})
}
