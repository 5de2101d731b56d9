package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report prints the run's table: faults by kind with their times to
// recover, requests accepted, lost and doubled, and verify's verdict.
func (r *Result) Report(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tinjected\trecovered\trecover p50\trecover max\t")
	by := map[string][]Fault{}
	for _, f := range r.Faults {
		by[f.Kind] = append(by[f.Kind], f)
	}
	for _, k := range Kinds {
		fs := by[k]
		var ds []time.Duration
		for _, f := range fs {
			if f.Err == nil {
				ds = append(ds, f.Recover)
			}
		}
		p50, mx := percentiles(ds)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", k, len(fs), len(ds), p50, mx)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t")
	fmt.Fprintln(tw, "requests\taccepted\trefused\tlost\tdoubled\t")
	j, c := r.Jobs, r.Counters
	fmt.Fprintf(tw, "jobs (POST /create/job as CloudEvents)\t%d\t%d\t%d\t%d\t\n", j.Accepted, j.Refused, j.Lost, j.Doubled)
	fmt.Fprintf(tw, "messages (POST /messages)\t%d\t%d\t%d\t%d\t\n", c.Posts, c.Refused, c.LostMessages, 0)
	fmt.Fprintf(tw, "reads (POST /messages/<id>/read)\t%d\t-\t%d\t%d\t\n", c.Reads, c.LostReads, 0)
	fmt.Fprintf(tw, "dialog reads (POST /dialogs/read)\t%d\t-\t-\t-\t\n", c.DialogReads)
	fmt.Fprintf(tw, "counters (%d users, total+unread)\t-\t-\t%d\t%d\t\n", c.Users, c.Lost, c.Doubled)
	if o := r.Orders; o != nil {
		fmt.Fprintf(tw, "orders (POST /orders, %d confirmed, %d rejected)\t%d\t%d\t%d\t%d\t\n", o.Confirmed, o.Rejected, o.Accepted, o.Refused, o.Lost, 0)
		fmt.Fprintf(tw, "deposits (cents)\t%d\t-\t%d\t%d\t\n", o.Deposited, o.DepositsLost, o.DepositsDoubled)
	}
	if c := r.Config; c != nil {
		lost := 0
		if !c.AtHead {
			lost = 1
		}
		fmt.Fprintf(tw, "config pushes (git push; subscribers at head: %v)\t%d\t%d\t%d\t-\t\n", c.AtHead, c.Pushed, c.Refused, lost)
	}
	_ = tw.Flush()
	orders := 0
	if r.Orders != nil {
		orders = r.Orders.Retried
	}
	fmt.Fprintf(w, "\nretried by the client until accepted: %d jobs, %d dialogs requests, %d orders requests\n", j.Retried, c.Retried, orders)
	fmt.Fprintf(w, "ClickHouse rows still stored twice (redeliveries not merged away yet; FINAL hides them): %d; jobs rows no accepted request made: %d\n",
		j.RawDuplicates, j.Unasked)
	fmt.Fprintf(w, "settled %s after the load; run took %s\n", r.Settled.Round(time.Second), r.Elapsed.Round(time.Second))
	for _, f := range r.Faults {
		if f.Err != nil {
			fmt.Fprintf(w, "FAULT %s %s at %s: %v\n", f.Kind, f.Target, f.At.UTC().Format("15:04:05"), f.Err)
		}
	}
	for _, s := range r.Refused {
		fmt.Fprintf(w, "refused: %s\n", s)
	}
	for _, o := range r.Orphans {
		fmt.Fprintf(w, "ORPHAN: %s survived its engine's SIGKILL\n", o)
	}
	examples := append(j.Examples, c.Examples...)
	if r.Orders != nil {
		examples = append(examples, r.Orders.Examples...)
	}
	for _, e := range examples {
		fmt.Fprintf(w, "DRIFT: %s\n", e)
	}
	verdict := "no drift"
	if !r.VerifyOK {
		verdict = "FAILED:\n" + indent(r.Verify)
	}
	fmt.Fprintf(w, "jobflow verify all: %s\n", verdict)
	if r.OK() {
		fmt.Fprintln(w, "chaos: PASS")
	} else {
		fmt.Fprintln(w, "chaos: FAIL")
	}
}

func percentiles(ds []time.Duration) (p50, mx string) {
	if len(ds) == 0 {
		return "-", "-"
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2].Round(100 * time.Millisecond).String(), ds[len(ds)-1].Round(100 * time.Millisecond).String()
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
