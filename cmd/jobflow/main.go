// Command jobflow runs the job pipeline on one machine.
//
//	jobflow up     start everything (broker, databases, functions, sources) in the foreground
//	jobflow env    list every setting (environment variable) with its default
package main

import (
	"context"
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
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx)
	case "env":
		err = engine.Usage()
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "jobflow: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobflow:", err)
		os.Exit(1)
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
