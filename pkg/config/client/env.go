package client

import (
	"fmt"
	"log/slog"

	"github.com/kelseyhightower/envconfig"
)

// Env is where a function finds the configuration service.
type Env struct {
	URL   string `envconfig:"JOBFLOW_CONFIG_URL" desc:"config-subscribe's URL: the function's knobs follow the configuration repository live; empty: the environment's values only"`
	Cache string `envconfig:"JOBFLOW_CONFIG_CACHE" desc:"file of last-known-good values, used until the service answers; empty: none"`
}

// FromEnv is a client for a function's keys configured by Env; without
// JOBFLOW_CONFIG_URL it never connects and every Var keeps its default.
func FromEnv(log *slog.Logger, keys ...string) (*Client, error) {
	var e Env
	if err := envconfig.Process("", &e); err != nil {
		return nil, fmt.Errorf("live config: %w", err)
	}
	return New(Options{URL: e.URL, Keys: keys, CacheFile: e.Cache, Log: log}), nil
}
