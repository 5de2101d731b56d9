package main

import (
	"context"
	"flag"
	"io"
	"os"
	"strings"

	"github.com/jobflow/jobflow/pkg/orders/rebuild"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

func init() {
	registerRebuilder("customers", "notify's customers table from the compacted orders-users topic "+
		"[--brokers B] [--notify-url URL] [--fresh S] [--replaced S]", rebuildCustomers)
}

func rebuildCustomers(ctx context.Context, args []string, out io.Writer) (bool, bool, error) {
	if err := jobsDefaults(); err != nil { // KAFKA_BROKERS, JOBFLOW_POSTGRES_URL
		return false, false, err
	}
	if os.Getenv("JOBFLOW_NOTIFY_URL") == "" { // the notify database `jobflow up` makes
		os.Setenv("JOBFLOW_NOTIFY_URL", pgdb.WithDatabase(os.Getenv("JOBFLOW_POSTGRES_URL"), "notify"))
	}
	fs := flag.NewFlagSet("jobflow rebuild customers", flag.ContinueOnError)
	fs.SetOutput(out)
	var o rebuild.Options
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka brokers (host:port,...)")
	fs.StringVar(&o.Topic, "topic", rebuild.Topic, "the compacted topic of users")
	fs.StringVar(&o.NotifyURL, "notify-url", os.Getenv("JOBFLOW_NOTIFY_URL"), "PostgreSQL URL of the notify database")
	fs.StringVar(&o.Fresh, "fresh", rebuild.Fresh, "PostgreSQL schema the fresh table is built in")
	fs.StringVar(&o.Replaced, "replaced", rebuild.Replaced, "PostgreSQL schema a swap moves the live table to")
	fs.BoolVar(&o.Swap, "swap", false, "put the rebuilt table in place of the live one if they differ")
	fs.BoolVar(&o.Force, "force", false, "with --swap: swap even if they are equal")
	limit := fs.Int("limit", 20, "keys of each difference to print (0: all)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return false, false, usageError(rebuildUsage())
	}
	o.Brokers = strings.Split(*brokers, ",")
	d, err := rebuild.Customers(ctx, o, out)
	if err != nil {
		return false, false, err
	}
	d.Print(out, "customers", *limit)
	return d.Equal(), d.Swapped, nil
}
