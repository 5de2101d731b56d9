// Command jobflow-chaos is the chaos suite (make chaos): it runs the
// whole local system under steady load while it SIGKILLs function
// instances, the CDC source and the engine, and restarts PostgreSQL and
// ClickHouse; then it checks that no accepted request was lost and no
// effect doubled, runs `jobflow verify all`, and prints a table. Exit 1
// when anything was lost, doubled, unrecovered or drifted. See
// docs/RELIABILITY.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jobflow/jobflow/internal/chaos"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jobflow-chaos:", err)
		os.Exit(2)
	}
}

func run() error {
	size := flag.String("size", "full", "ci (2 minutes of load, one fault of each kind) or full (10 minutes, up to 40 faults)")
	duration := flag.Duration("duration", 0, "how long the load runs (0: the size's)")
	rate := flag.Float64("rate", 0, "jobs per second; dialogs requests go at half of it, orders at an eighth (0: the size's)")
	orders := flag.Bool("orders", true, "run the orders load too")
	config := flag.Bool("config", true, "push configuration changes too (subscribers must end at the head revision)")
	faults := flag.String("faults", "all", "fault kinds, comma-separated: kill-function, kill-cdc, kill-engine, restart-postgres, restart-clickhouse; all; none")
	count := flag.Int("count", 0, "faults to inject, at least one of each kind (0: the size's)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the random choices (printed)")
	dir := flag.String("dir", "", "state directory (servers, JOBFLOW_DIR, logs); empty: a new /tmp/chaos-*")
	bin := flag.String("jobflow", ".jobflow/bin/jobflow", "the jobflow binary (make build)")
	root := flag.String("root", ".", "repository root")
	flag.Parse()

	cfg, err := chaos.Sizes(*size)
	if err != nil {
		return err
	}
	if *duration > 0 {
		cfg.Duration = *duration
	}
	if *rate > 0 {
		cfg.JobRate, cfg.MessageRate, cfg.OrderRate = *rate, *rate/2, *rate/8
	}
	if !*orders {
		cfg.OrderRate = 0
	}
	if !*config {
		cfg.ConfigRate = 0
	}
	if *count > 0 {
		cfg.Faults = *count
	}
	if cfg.Kinds, err = chaos.ParseKinds(*faults); err != nil {
		return err
	}
	if cfg.Ports, err = chaos.PortsFromEnv(); err != nil {
		return err
	}
	if cfg.Root, err = filepath.Abs(*root); err != nil {
		return err
	}
	if cfg.Bin, err = filepath.Abs(*bin); err != nil {
		return err
	}
	if cfg.Dir = *dir; cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "chaos-"); err != nil {
			return err
		}
	}
	cfg.Seed, cfg.Out = *seed, os.Stderr
	fmt.Fprintf(os.Stderr, "jobflow-chaos -size %s -duration %s -rate %g -faults %s -count %d -seed %d\n",
		*size, cfg.Duration, cfg.JobRate, *faults, cfg.Faults, cfg.Seed)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := chaos.Run(ctx, cfg)
	if res != nil {
		res.Report(os.Stdout)
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		os.Exit(1)
	}
	return nil
}
