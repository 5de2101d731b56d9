package engine

import (
	"context"
	"fmt"

	"github.com/jobflow/jobflow/internal/tracestore"
	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// engineService is the engine's OpenTelemetry service.name.
const engineService = "jobflow-engine"

// startTracing installs the engine's tracer provider: its spans (ingresses,
// deliveries) are kept in memory for GET /traces when JOBFLOW_TRACES is on,
// and exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
func (e *Engine) startTracing(ctx context.Context, stops *stack) error {
	if !e.cfg.Traces && tracing.Endpoint() == "" {
		return nil
	}
	var store *tracestore.Store
	if e.cfg.Traces {
		store = tracestore.New(e.cfg.TracesKept)
	}
	var shutdown func(context.Context) error
	var err error
	if store != nil {
		shutdown, err = tracing.Setup(ctx, engineService, store.Processor(engineService))
	} else {
		shutdown, err = tracing.Setup(ctx, engineService)
	}
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	e.mu.Lock()
	e.traces = store
	e.mu.Unlock()
	stops.push(func() { _ = shutdown(context.Background()) })
	return nil
}

// traceEnv is what a function process needs to send its spans to the
// engine's receiver: none when the user named an OTLP endpoint (they go
// there) or the engine keeps no traces.
func (e *Engine) traceEnv() []string {
	if !e.cfg.Traces || tracing.Endpoint() != "" {
		return nil
	}
	return []string{
		fmt.Sprintf("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d", e.cfg.AdminPort),
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY=1000", // ms: a trace is complete a second after its last hop
	}
}
