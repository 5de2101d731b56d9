package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/jobflow/jobflow/pkg/jobs/rebuild"
)

// rebuilders are the views `jobflow rebuild <view>` makes again from the
// log; a domain adds its own from its file's init (rebuild_<domain>.go).
var rebuilders = map[string]rebuilder{}

type rebuilder struct {
	help string
	// run rebuilds, compares, swaps if asked; equal reports whether the
	// live view equalled its rebuild.
	run func(ctx context.Context, args []string, out io.Writer) (equal, swapped bool, err error)
}

func registerRebuilder(name, help string, run func(ctx context.Context, args []string, out io.Writer) (bool, bool, error)) {
	if _, dup := rebuilders[name]; dup {
		panic("rebuilder " + name + " registered twice")
	}
	rebuilders[name] = rebuilder{help: help, run: run}
}

func rebuildUsage() string {
	names := make([]string, 0, len(rebuilders))
	for n := range rebuilders {
		names = append(names, n)
	}
	sort.Strings(names)
	u := "usage: jobflow rebuild <view> [--swap] [--force] [flags]\n" +
		"  rebuilds the view from the log into a fresh table, compares it with the live one and reports\n" +
		"  (exit 1 if they differ); --swap puts the rebuilt table in place when they differ (--force: always)\n"
	for _, n := range names {
		u += fmt.Sprintf("  %-11s %s\n", n, rebuilders[n].help)
	}
	return u
}

// runRebuild is `jobflow rebuild`: exit 0 when the live view equals its
// rebuild or the rebuild was swapped in, 1 (errPartial) when it differs.
func runRebuild(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError(rebuildUsage())
	}
	r, ok := rebuilders[args[0]]
	if !ok {
		return usageError(rebuildUsage())
	}
	equal, swapped, err := r.run(ctx, args[1:], out)
	switch {
	case err != nil:
		return err
	case !equal && !swapped:
		return errPartial
	}
	return nil
}

func init() {
	flags := "[--brokers B] [--postgres-url URL] [--clickhouse-addr A] [--clickhouse-db D] [--fresh S] [--replaced S]"
	registerRebuilder("jobs", "the PostgreSQL jobs table from the postgres-topic "+flags,
		jobsRebuilder("jobs", rebuild.Jobs))
	registerRebuilder("job_events", "the ClickHouse job_events table from the clickhouse-topic "+flags,
		jobsRebuilder("job_events", rebuild.Events))
}

func jobsRebuilder(view string, run func(context.Context, rebuild.Options, io.Writer) (rebuild.Diff, error)) func(context.Context, []string, io.Writer) (bool, bool, error) {
	return func(ctx context.Context, args []string, out io.Writer) (bool, bool, error) {
		if err := jobsDefaults(); err != nil {
			return false, false, err
		}
		fs := flag.NewFlagSet("jobflow rebuild", flag.ContinueOnError)
		fs.SetOutput(out)
		var o rebuild.Options
		brokers := o.AddFlags(fs)
		fs.StringVar(&o.Fresh, "fresh", rebuild.Fresh, "PostgreSQL schema / ClickHouse database the fresh table is built in")
		fs.StringVar(&o.Replaced, "replaced", rebuild.Replaced, "PostgreSQL schema / ClickHouse database a swap moves the live table to")
		fs.BoolVar(&o.Swap, "swap", false, "put the rebuilt table in place of the live one if they differ")
		fs.BoolVar(&o.Force, "force", false, "with --swap: swap even if they are equal")
		fs.IntVar(&o.Limit, "limit", 20, "keys of each difference to print (0: all)")
		if err := fs.Parse(args); err != nil {
			return false, false, usageError(rebuildUsage())
		}
		if fs.NArg() > 0 {
			return false, false, usageError(rebuildUsage())
		}
		if *brokers != "" {
			o.Brokers = strings.Split(*brokers, ",")
		}
		d, err := run(ctx, o, out)
		if err != nil {
			return false, false, err
		}
		d.Print(out, view, o.Limit)
		return d.Equal(), d.Swapped, nil
	}
}
