// Command jobflow runs the job pipeline on one machine.
//
//	jobflow up     start everything (broker, databases, functions, sources) in the foreground
//	jobflow env    list every setting (environment variable) with its default
//	jobflow verify counters   compare message counters with the dialogs database (exit 1 on drift)
//	jobflow verify orders     check the orders invariants in the services' databases (exit 1 on a violation)
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/pkg/counters/verify"
)

const usage = `usage: jobflow <command>

commands:
  up      start the whole pipeline locally, in the foreground (Ctrl-C stops it)
  env     list the engine's settings (environment variables) and their defaults
  verify counters [--dialogs-url URL] [--counters-url URL] [--wait D] [--limit N]
          compare every user's counters with count(*) in the dialogs database;
          exit 1 on any drift
  verify orders [--postgres-url URL] [--<service>-url URL] [--wait D] [--limit N]
          check the orders invariants (money, stock, couriers, decisions,
          reserves, messages) in the services' databases; exit 1 on any violation
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// `make run | tee log` and Ctrl-C: tee dies first, and a write to the
	// closed pipe must not kill the engine before it stopped what it started.
	signal.Ignore(syscall.SIGPIPE)
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx)
	case "env":
		err = engine.Usage()
	case "verify":
		if len(os.Args) >= 3 && os.Args[2] == "orders" {
			err = verifyOrders(ctx, os.Args[3:])
			break
		}
		if len(os.Args) < 3 || os.Args[2] != "counters" {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		// Defaults: the databases `jobflow up` starts.
		for k, db := range map[string]string{"JOBFLOW_DIALOGS_URL": "dialogs", "JOBFLOW_COUNTERS_URL": "counters"} {
			if os.Getenv(k) == "" {
				os.Setenv(k, "postgres://postgres@127.0.0.1:55432/"+db+"?sslmode=disable")
			}
		}
		if err = verify.RunCounters(ctx, os.Args[3:], os.Stdout); errors.Is(err, verify.ErrDrift) {
			os.Exit(1)
		}
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "jobflow: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobflow:", err)
		os.Exit(2)
	}
}

func up(ctx context.Context) error {
	cfg, err := engine.LoadConfig()
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if os.Getenv("LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return engine.New(cfg, log, os.Stdout).Run(ctx)
}
