// Package verify is `jobflow verify counters`: every user's counters
// checked against the dialogs database they are derived from.
package verify

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/pkg/counters/counter"
)

// ErrDrift is returned when the check found drift (exit status 1).
var ErrDrift = errors.New("counters drift from the source")

// CountersOptions of a counters check.
type CountersOptions struct {
	DialogsURL  string        // source database
	CountersURL string        // counters database
	Wait        time.Duration // keep checking until no drift or this long has passed
	Interval    time.Duration // between checks while waiting
	Limit       int           // drift lines printed (0: all)
}

// RunCounters is `jobflow verify counters [flags]`: it compares every
// user's counters with count(*) of their messages in the dialogs database,
// prints the drift, and returns ErrDrift if there is any (exit 1), another
// error if it could not check (exit 2 is fitting). Flags (defaults from the
// environment): --dialogs-url ($JOBFLOW_DIALOGS_URL), --counters-url
// ($JOBFLOW_COUNTERS_URL), --wait (0: check once; else retry until no
// drift, for a pipeline still catching up), --limit.
func RunCounters(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("verify counters", flag.ContinueOnError)
	fs.SetOutput(out)
	var o CountersOptions
	fs.StringVar(&o.DialogsURL, "dialogs-url", os.Getenv("JOBFLOW_DIALOGS_URL"), "PostgreSQL URL of the dialogs (source) database")
	fs.StringVar(&o.CountersURL, "counters-url", os.Getenv("JOBFLOW_COUNTERS_URL"), "PostgreSQL URL of the counters database")
	fs.DurationVar(&o.Wait, "wait", 0, "retry until there is no drift or this long has passed (0: check once)")
	fs.IntVar(&o.Limit, "limit", 20, "drift lines to print (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("verify counters: unexpected arguments %v", fs.Args())
	}
	_, err := Counters(ctx, o, out)
	return err
}

// Counters runs the check and prints its report to out.
func Counters(ctx context.Context, o CountersOptions, out io.Writer) (counter.Report, error) {
	var rep counter.Report
	if o.DialogsURL == "" || o.CountersURL == "" {
		return rep, errors.New("verify counters: set --dialogs-url and --counters-url (or JOBFLOW_DIALOGS_URL and JOBFLOW_COUNTERS_URL)")
	}
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	dialogs, err := pgxpool.New(ctx, o.DialogsURL)
	if err != nil {
		return rep, fmt.Errorf("dialogs database: %w", err)
	}
	defer dialogs.Close()
	cdb, err := pgxpool.New(ctx, o.CountersURL)
	if err != nil {
		return rep, fmt.Errorf("counters database: %w", err)
	}
	defer cdb.Close()
	deadline := time.Now().Add(o.Wait)
	for {
		rep, err = counter.Compare(ctx, dialogs, cdb)
		if err != nil {
			return rep, err
		}
		if rep.OK() || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(o.Interval):
		}
	}
	rep.Print(out, o.Limit)
	if !rep.OK() {
		return rep, ErrDrift
	}
	return rep, nil
}
