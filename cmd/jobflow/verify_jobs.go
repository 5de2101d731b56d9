package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/pkg/jobs/verify"
)

func init() {
	registerVerifier("jobs", "every job finished in the log (postgres-topic, clickhouse-topic) against the jobs table "+
		"and job_events [--brokers B] [--postgres-url URL] [--clickhouse-addr A] [--clickhouse-db D] [--wait D] [--limit N]", verifyJobs)
}

// jobsDefaults points the jobs views' settings at what `jobflow up` starts
// (its settings: JOBFLOW_KAFKA_PORT, JOBFLOW_POSTGRES_PORT, ...) unless
// they are set.
func jobsDefaults() error {
	cfg, err := engine.LoadConfig()
	if err != nil {
		return err
	}
	defaults := map[string]string{
		"KAFKA_BROKERS":           fmt.Sprintf("127.0.0.1:%d", cfg.KafkaPort),
		"JOBFLOW_POSTGRES_URL":    fmt.Sprintf("postgres://postgres@127.0.0.1:%d/jobflow?sslmode=disable", cfg.PostgresPort),
		"JOBFLOW_CLICKHOUSE_ADDR": fmt.Sprintf("127.0.0.1:%d", cfg.ClickHouseTCP),
	}
	for k, v := range defaults {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return nil
}

func verifyJobs(ctx context.Context, args []string, out io.Writer) error {
	if err := jobsDefaults(); err != nil {
		return err
	}
	err := verify.RunJobs(ctx, args, out)
	if errors.Is(err, verify.ErrDrift) {
		return fmt.Errorf("%w: %w", errDrift, err)
	}
	return err
}
