package rebuild

import (
	"context"
	"fmt"
	"io"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/verify"
)

// lineBatch is how many lines one insert of a rebuild writes (one part).
const lineBatch = 100000

// Events rebuilds the ClickHouse job_events table from the
// clickhouse-topic into <Fresh>.job_events, compares it with the live
// table (both read with FINAL, as queries read them) and swaps it in if
// asked.
func Events(ctx context.Context, o Options, out io.Writer) (Diff, error) {
	o.defaults()
	var d Diff
	live, err := eventstore.Open(ctx, o.ClickHouseAddr, o.ClickHouseDB)
	if err != nil {
		return d, err
	}
	defer live.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS " + ident(o.Fresh), "DROP TABLE IF EXISTS " + ident(o.Fresh) + ".job_events"} {
		if err := live.Conn.Exec(ctx, q); err != nil {
			return d, fmt.Errorf("fresh database %s: %w", o.Fresh, err)
		}
	}
	store, err := eventstore.Open(ctx, o.ClickHouseAddr, o.Fresh)
	if err != nil {
		return d, err
	}
	defer store.Close()

	fmt.Fprintf(out, "job_events: reading %s...\n", o.ClickHouseTopic)
	l, err := o.ReadLog(ctx, out)
	if err != nil {
		return d, err
	}
	if err := insert(ctx, store, l.LineList(), out); err != nil {
		return d, err
	}
	liveTable, freshTable := ident(o.ClickHouseDB)+".job_events", ident(o.Fresh)+".job_events"
	if d, err = compareEvents(ctx, live.Conn, liveTable, freshTable); err != nil {
		return d, err
	}
	if !o.Swap || (d.Equal() && !o.Force) {
		return d, nil
	}
	replaced := ident(o.Replaced)
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS " + replaced, "DROP TABLE IF EXISTS " + replaced + ".job_events",
		"RENAME TABLE " + liveTable + " TO " + replaced + ".job_events, " + freshTable + " TO " + liveTable} {
		if err := live.Conn.Exec(ctx, q); err != nil {
			return d, fmt.Errorf("swap job_events tables: %w", err)
		}
	}
	d.Swapped = true
	after, err := verify.ReadLog(ctx, verify.ReadOptions{Brokers: o.Brokers, PostgresTopic: o.PostgresTopic,
		ClickHouseTopic: o.ClickHouseTopic, From: l.Ends})
	if err != nil {
		return d, fmt.Errorf("catch up after the swap: %w", err)
	}
	lines := after.LineList()
	d.CaughtUp = len(lines)
	// A fresh connection: the live one's table moved.
	s, err := eventstore.Open(ctx, o.ClickHouseAddr, o.ClickHouseDB)
	if err != nil {
		return d, err
	}
	defer s.Close()
	return d, insert(ctx, s, lines, nil)
}

// ident quotes a ClickHouse identifier.
func ident(name string) string { return "`" + name + "`" }

func insert(ctx context.Context, s *eventstore.Store, lines []job.EventLine, out io.Writer) error {
	for i := 0; i < len(lines); i += lineBatch {
		end := min(i+lineBatch, len(lines))
		if err := s.Insert(ctx, lines[i:end]); err != nil {
			return err
		}
		if out != nil {
			fmt.Fprintf(out, "job_events: %d of %d lines written\n", end, len(lines))
		}
	}
	return nil
}

type eventKey struct{ id, event string }

type eventValue struct {
	tsMS, sleep, size uint64
	eventID           string
}

func readAll(ctx context.Context, ch driver.Conn, table string) (map[eventKey]eventValue, error) {
	rows, err := ch.Query(ctx, "SELECT toString(job_id), event, any(ts_ms), any(sleep), any(data_size), any(event_id) FROM "+table+" FINAL GROUP BY job_id, event")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	out := map[eventKey]eventValue{}
	for rows.Next() {
		var k eventKey
		var v eventValue
		if err := rows.Scan(&k.id, &k.event, &v.tsMS, &v.sleep, &v.size, &v.eventID); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		out[k] = v
	}
	return out, rows.Err()
}

// compareEvents compares the tables by (job_id, event), the table's key.
func compareEvents(ctx context.Context, ch driver.Conn, live, fresh string) (Diff, error) {
	var d Diff
	l, err := readAll(ctx, ch, live)
	if err != nil {
		return d, err
	}
	f, err := readAll(ctx, ch, fresh)
	if err != nil {
		return d, err
	}
	d.Live, d.Rebuilt = len(l), len(f)
	for k, fv := range f {
		lv, ok := l[k]
		switch {
		case !ok:
			d.Missing = append(d.Missing, k.id+" "+k.event)
		case lv != fv:
			d.Differ = append(d.Differ, k.id+" "+k.event)
		}
	}
	for k := range l {
		if _, ok := f[k]; !ok {
			d.Extra = append(d.Extra, k.id+" "+k.event)
		}
	}
	return d, nil
}
