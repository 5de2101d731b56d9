package console

import (
	"net/http"
	"strings"
)

// trace: GET /api/console/trace?id=X → {"id", "traces": [trace]}, the
// kept traces of X (see internal/tracestore: hops with their offset from
// the trace's start, duration and depth) for the lookup's waterfall; 404
// when the engine keeps no traces, 400 for an id the lookup refuses too.
func (c *Console) trace(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if reason := badLookupID(id); reason != "" {
		fail(w, http.StatusBadRequest, reason)
		return
	}
	if c.cfg.Traces == nil {
		fail(w, http.StatusNotFound, "the engine keeps no traces (JOBFLOW_TRACES=false, or OTEL_EXPORTER_OTLP_ENDPOINT sends them elsewhere)")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "traces": c.cfg.Traces(id)})
}
