package fn

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// RuntimeConfig is read by every function from its environment.
type RuntimeConfig struct {
	// Port is where the function listens when LISTEN_ADDRESS is empty (as func's wrapper does).
	Port int `envconfig:"PORT" default:"8080" desc:"port to listen on when LISTEN_ADDRESS is empty"`
	// ListenAddress overrides Port, e.g. 127.0.0.1:9000.
	ListenAddress string `envconfig:"LISTEN_ADDRESS" desc:"host:port to listen on (overrides PORT)"`
	// Sink is the default output: set by a SinkBinding on Knative, by the engine locally.
	Sink string `envconfig:"K_SINK" desc:"where returned events are sent; empty: they are the HTTP reply"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64 `envconfig:"MAX_BODY_BYTES" default:"1048576" desc:"largest request body accepted (bytes)"`
	// Pprof serves Go's profiler on /debug/pprof/ (for benchmarks and debugging).
	Pprof bool `envconfig:"PPROF" default:"false" desc:"serve net/http/pprof on /debug/pprof/ (debugging only)"`
}

// Addr is the listen address.
func (c RuntimeConfig) Addr() string {
	if c.ListenAddress != "" {
		return c.ListenAddress
	}
	return fmt.Sprintf(":%d", c.Port)
}

// loadRuntimeConfig reads RuntimeConfig from the environment.
func loadRuntimeConfig() (RuntimeConfig, error) {
	var c RuntimeConfig
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("runtime config: %w", err)
	}
	return c, nil
}

// Process fills a function's own config struct from the environment, with
// prefix (e.g. "PROCESSOR" for PROCESSOR_MAX_SLEEP); it wraps envconfig so
// that every function reports bad settings the same way.
func Process(prefix string, spec any) error {
	if err := envconfig.Process(prefix, spec); err != nil {
		return fmt.Errorf("%s config: %w", strings.ToLower(prefix), err)
	}
	return nil
}

// NewLogger returns the structured JSON logger every function uses.
func NewLogger(level, function string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})).With("function", function)
}
