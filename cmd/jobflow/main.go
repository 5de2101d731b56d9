// Command jobflow runs the job pipeline on one machine.
//
//	jobflow up     start everything (broker, databases, functions, sources) in the foreground
//	jobflow env    list every setting (environment variable) with its default
//	jobflow verify counters   compare message counters with the dialogs database (exit 1 on drift)
//	jobflow verify jobs       compare the jobs views with the log (exit 1 on drift)
//	jobflow rebuild VIEW      rebuild a view from the log, compare, swap with --swap
//	jobflow replay NAME --to-beginning | --offset N | --time T   deliver again from there
//	jobflow dlq list | show | redrive   read and redeliver dead letters
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
)

const usage = `usage: jobflow <command>

commands:
  up      start the whole pipeline locally, in the foreground (Ctrl-C stops it)
  env     list the engine's settings (environment variables) and their defaults
  verify counters [--dialogs-url URL] [--counters-url URL] [--wait D] [--limit N]
          compare every user's counters with count(*) in the dialogs database;
          exit 1 on any drift
  verify all   every verifier (jobflow verify for the list); exit 1 on any drift
  verify jobs  every finished job of the log against the jobs table and job_events (exit 1 on drift)
  rebuild <view> [--swap]   rebuild a view from the log into a fresh table, compare it with the live
          one (exit 1 if they differ), swap it in with --swap (jobflow rebuild for the views)
  replay <source-or-trigger> --to-beginning | --offset N | --time T
          deliver a KafkaSource's or Trigger's records again from there
  dlq list | show | redrive    dead letters: list, show, redeliver (jobflow dlq for its flags)
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
		err = runVerify(ctx, os.Args[2:], os.Stdout)
	case "rebuild":
		err = runRebuild(ctx, os.Args[2:], os.Stdout)
	case "replay":
		err = runReplay(ctx, os.Args[2:], os.Stdout)
	case "dlq":
		err = runDLQ(ctx, os.Args[2:], os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "jobflow: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	exitOn(err)
}

// exitOn ends the command for err: exit 1 when it ran and found a problem
// (drift, an event not redriven), 2 otherwise.
func exitOn(err error) {
	var u usageError
	switch {
	case err == nil:
	case errors.As(err, &u):
		fmt.Fprint(os.Stderr, string(u))
		os.Exit(2)
	case errors.Is(err, errPartial):
		os.Exit(1)
	default:
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
