package fn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobflow/jobflow/pkg/runtime/tracing"
)

// The instanced function shapes of Knative Functions for Go; Serve accepts
// the same ones func's wrapper does, so a function runs unchanged locally
// and on Knative. Their lifecycle methods (handler.go) are optional.
type (
	cloudEventFunction interface {
		Handle(ctx context.Context, e event.Event) (*event.Event, error)
	}
	httpFunction interface {
		Handle(w http.ResponseWriter, r *http.Request)
	}
)

// Main runs f until SIGINT/SIGTERM and exits non-zero on failure: the whole
// body of a function's local main package.
func Main(name string, f any) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := loadRuntimeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := NewLogger(cfg.LogLevel, name)
	shutdownTracing, err := tracing.Setup(ctx, name)
	if err != nil {
		log.Error("tracing", "err", err)
		os.Exit(2)
	}
	defer func() { _ = shutdownTracing(context.Background()) }()
	if err := Serve(ctx, name, f, cfg, log); err != nil {
		log.Error("function failed", "err", err)
		os.Exit(1)
	}
}

// Serve starts f, serves it on cfg.Addr() until ctx ends, then drains
// in-flight requests and stops f.
func Serve(ctx context.Context, name string, f any, cfg RuntimeConfig, log *slog.Logger) error {
	var h http.Handler
	switch f := f.(type) {
	case cloudEventFunction:
		h = traced(name, false, &ceHandler{f: f, name: name, log: log})
	case httpFunction:
		h = traced(name, true, http.HandlerFunc(f.Handle))
	default:
		return fmt.Errorf("%T is neither a CloudEvent nor an HTTP function", f)
	}
	if s, ok := f.(starter); ok {
		if err := s.Start(ctx, environMap()); err != nil {
			return fmt.Errorf("start: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health/readiness", probe(f, true))
	mux.HandleFunc("/health/liveness", probe(f, false))
	mux.Handle("/metrics", promhttp.Handler())
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.Handle("/", instrument(name, cfg.MaxBodyBytes, log, h))

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("function serving", "addr", ln.Addr().String(), "sink", cfg.Sink)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if s, ok := f.(stopper); ok {
		err = errors.Join(err, s.Stop(shutdownCtx))
	}
	log.Info("function stopped")
	return err
}

func environMap() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func probe(f any, readiness bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, err := true, error(nil)
		if rr, is := f.(readier); is && readiness {
			ok, err = rr.Ready(r.Context())
		}
		if lr, is := f.(aliver); is && !readiness {
			ok, err = lr.Alive(r.Context())
		}
		if err != nil || !ok {
			if err == nil {
				err = errors.New("not ready")
			}
			WriteError(w, Unavailable(err))
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("OK"))
	}
}

// statusWriter remembers the status code for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection: flushes and
// write deadlines of streams, the hijack of a WebSocket.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func instrument(name string, maxBody int64, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		inflight.WithLabelValues(name).Inc()
		defer func() {
			if p := recover(); p != nil {
				log.Error("handler panicked", "panic", p, "path", r.URL.Path)
				WriteError(sw, fmt.Errorf("internal error: %v", p))
			}
			inflight.WithLabelValues(name).Dec()
			requests.WithLabelValues(name, strconv.Itoa(sw.code)).Inc()
			duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
			if sw.code >= 400 {
				log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", sw.code)
			}
		}()
		r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
		next.ServeHTTP(sw, r)
	})
}

// ceHandler serves a CloudEvent function: binary or structured CloudEvents
// in (or a batch, see batch.go); 202 with no body when nothing is replied,
// 200 with the reply event, or a JSON error with the handler's status.
type ceHandler struct {
	f    cloudEventFunction
	name string
	log  *slog.Logger
}

func (c *ceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		WriteError(w, WithStatus(http.StatusMethodNotAllowed, errors.New("send a CloudEvent with POST")))
		return
	}
	if IsBatch(r.Header) {
		c.serveBatch(w, r)
		return
	}
	e, err := ReadEvent(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	r, endSpan := eventSpan(r, c.name, e)
	reply, err := c.f.Handle(r.Context(), *e)
	endSpan(err)
	if err != nil {
		c.log.Warn("handler failed", "type", e.Type(), "id", e.ID(), "source", e.Source(), "err", err)
		WriteError(w, err)
		return
	}
	if reply == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if err := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), http.StatusOK, w); err != nil {
		c.log.Error("write reply", "err", err)
	}
}
