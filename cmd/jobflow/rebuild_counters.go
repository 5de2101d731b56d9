package main

import (
	"context"
	"flag"
	"io"
	"os"
	"strings"

	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/counters/rebuild"
)

func init() {
	registerRebuilder("counters", "the counters database's counters and users from the CDC topics "+
		"[--brokers B] [--counters-url URL] [--fresh S] [--replaced S]", rebuildCounters)
}

func rebuildCounters(ctx context.Context, args []string, out io.Writer) (bool, bool, error) {
	if err := countersDefaults(); err != nil { // KAFKA_BROKERS, JOBFLOW_COUNTERS_URL
		return false, false, err
	}
	fs := flag.NewFlagSet("jobflow rebuild counters", flag.ContinueOnError)
	fs.SetOutput(out)
	o := rebuild.Options{Tables: counter.Tables{Messages: envOr("COUNTER_MESSAGES_TABLE", "public.messages"), Users: envOr("COUNTER_USERS_TABLE", "public.users")}}
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka brokers (host:port,...)")
	fs.StringVar(&o.CountersURL, "counters-url", os.Getenv("JOBFLOW_COUNTERS_URL"), "PostgreSQL URL of the counters database")
	fs.StringVar(&o.Fresh, "fresh", rebuild.Fresh, "PostgreSQL schema the fresh tables are built in")
	fs.StringVar(&o.Replaced, "replaced", rebuild.Replaced, "PostgreSQL schema a swap moves the live tables to")
	fs.BoolVar(&o.Swap, "swap", false, "put the rebuilt tables in place of the live ones if they differ")
	fs.BoolVar(&o.Force, "force", false, "with --swap: swap even if they are equal")
	limit := fs.Int("limit", 20, "keys of each difference to print (0: all)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return false, false, usageError(rebuildUsage())
	}
	o.Brokers = strings.Split(*brokers, ",")
	d, err := rebuild.Counters(ctx, o, out)
	if err != nil {
		return false, false, err
	}
	d.Print(out, "counters", *limit)
	return d.Equal(), d.Swapped, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
