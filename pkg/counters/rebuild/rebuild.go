// Package rebuild is `jobflow rebuild counters`: the counters database's
// counters and users tables made again from the CDC topics of the dialogs
// database by the counter's own store (counter.Store.Apply: the same
// dedupe by change id, the same sums), compared with the live tables and,
// on request, swapped in for them in one transaction.
//
// The counters are sums of every change, so the rebuild equals the live
// view only when the topics still hold every change since the dialogs
// database was first captured (the CDC topics keep 7 days).
package rebuild

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/runtime/topicread"
	"github.com/jobflow/jobflow/pkg/runtime/viewdiff"
)

// Defaults: the topics of triggers/counter-source.yaml and the names of the
// fresh and replaced tables' schemas.
var (
	Topics = []string{"dialogs.public.messages", "dialogs.public.users"}
)

const (
	Fresh    = "jobflow_rebuild"
	Replaced = "jobflow_replaced"
	// Source is the KafkaSource whose records the counter gets: a change
	// without an LSN is deduped on the event id that source gives it.
	Namespace, Source = "jobflow", "counter-source"
)

// Options of a counters rebuild.
type Options struct {
	Brokers     []string
	Topics      []string // nil for Topics
	CountersURL string
	Tables      counter.Tables // zero for counter.DefaultTables
	Fresh       string         // "" for Fresh
	Replaced    string         // "" for Replaced
	Swap, Force bool
}

// tables a swap moves; processed_events goes with them (the ids of what the
// rebuilt counters hold).
var tables = []string{"counters", "users", "processed_events"}

// applyBatch is how many changes one transaction of a rebuild applies.
const applyBatch = 5000

// Counters rebuilds, compares and swaps if asked.
func Counters(ctx context.Context, o Options, out io.Writer) (viewdiff.Diff, error) {
	var d viewdiff.Diff
	if o.Topics == nil {
		o.Topics = Topics
	}
	if o.Tables.Messages == "" {
		o.Tables = counter.DefaultTables
	}
	if o.Fresh == "" {
		o.Fresh = Fresh
	}
	if o.Replaced == "" {
		o.Replaced = Replaced
	}
	freshURL, err := viewdiff.WithSearchPath(o.CountersURL, o.Fresh)
	if err != nil {
		return d, err
	}
	live, err := counter.Open(ctx, o.CountersURL)
	if err != nil {
		return d, err
	}
	defer live.Close()
	var liveSchema string
	if err := live.Pool.QueryRow(ctx, "SELECT current_schema()").Scan(&liveSchema); err != nil {
		return d, fmt.Errorf("live schema: %w", err)
	}
	fresh := pgx.Identifier{o.Fresh}.Sanitize()
	if _, err := live.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+fresh+" CASCADE; CREATE SCHEMA "+fresh); err != nil {
		return d, fmt.Errorf("fresh schema %s: %w", o.Fresh, err)
	}
	store, err := counter.Open(ctx, freshURL)
	if err != nil {
		return d, err
	}
	defer store.Close()

	fmt.Fprintf(out, "counters: reading %v...\n", o.Topics)
	ends, n, err := apply(ctx, store, o, nil, out)
	if err != nil {
		return d, err
	}
	fmt.Fprintf(out, "counters: %d changes applied\n", n)
	if d, err = compare(ctx, live, liveSchema, o.Fresh); err != nil {
		return d, err
	}
	if !o.Swap || (d.Equal() && !o.Force) {
		return d, nil
	}
	err = pgx.BeginFunc(ctx, live.Pool, func(tx pgx.Tx) error {
		q := "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{o.Replaced}.Sanitize()
		for _, t := range tables {
			q += "; DROP TABLE IF EXISTS " + pgx.Identifier{o.Replaced, t}.Sanitize() +
				"; ALTER TABLE " + pgx.Identifier{liveSchema, t}.Sanitize() + " SET SCHEMA " + pgx.Identifier{o.Replaced}.Sanitize() +
				"; ALTER TABLE " + pgx.Identifier{o.Fresh, t}.Sanitize() + " SET SCHEMA " + pgx.Identifier{liveSchema}.Sanitize()
		}
		_, err := tx.Exec(ctx, q)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("swap counters tables: %w", err)
	}
	d.Swapped = true
	// Catch up: the changes the counter applied to the old tables while the
	// rebuild ran; the new processed_events dedupes the others.
	_, d.CaughtUp, err = apply(ctx, live, o, ends, nil)
	return d, err
}

// apply reads the topics from from (nil: the oldest) and applies their
// changes to s in batches.
func apply(ctx context.Context, s *counter.Store, o Options, from topicread.Offsets, out io.Writer) (topicread.Offsets, int, error) {
	var batch []counter.Item
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := s.Apply(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	res, err := topicread.Read(ctx, topicread.Options{Brokers: o.Brokers, Topics: o.Topics, From: from, Progress: out},
		func(m *sarama.ConsumerMessage) error {
			e, err := kafkasource.ToEvent(ctx, m, Namespace, Source)
			if err != nil {
				return err
			}
			it, err := counter.ItemOf(*e, o.Tables)
			if err != nil || it == nil {
				return nil // the counter refuses it too (dead letter) or ignores it
			}
			batch = append(batch, *it)
			if len(batch) == applyBatch {
				return flush()
			}
			return nil
		})
	if err == nil {
		err = flush()
	}
	return res.Ends, n, err
}

// compare compares the counters (total, unread) and users (name, deleted)
// tables of both schemas; keys are "counters <user>" and "users <id>".
func compare(ctx context.Context, s *counter.Store, liveSchema, freshSchema string) (viewdiff.Diff, error) {
	var d viewdiff.Diff
	for _, c := range []struct{ table, key, cols string }{
		{"counters", "user_id", "total, unread"},
		{"users", "id", "name, deleted"},
	} {
		l, f := pgx.Identifier{liveSchema, c.table}.Sanitize(), pgx.Identifier{freshSchema, c.table}.Sanitize()
		var nl, nf int
		if err := s.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+l+"), (SELECT count(*) FROM "+f+")").Scan(&nl, &nf); err != nil {
			return d, fmt.Errorf("count %s: %w", c.table, err)
		}
		d.Live, d.Rebuilt = d.Live+nl, d.Rebuilt+nf
		rows, err := s.Pool.Query(ctx, fmt.Sprintf(`
			SELECT coalesce(l.%[1]s, r.%[1]s), l.%[1]s IS NULL, r.%[1]s IS NULL
			FROM %[2]s l FULL JOIN %[3]s r ON l.%[1]s = r.%[1]s
			WHERE l.%[1]s IS NULL OR r.%[1]s IS NULL OR ROW(%[4]s) IS DISTINCT FROM ROW(%[5]s)`,
			c.key, l, f, prefixed("l.", c.cols), prefixed("r.", c.cols)))
		if err != nil {
			return d, fmt.Errorf("compare %s: %w", c.table, err)
		}
		for rows.Next() {
			var id int64
			var noLive, noFresh bool
			if err := rows.Scan(&id, &noLive, &noFresh); err != nil {
				rows.Close()
				return d, fmt.Errorf("compare %s: %w", c.table, err)
			}
			key := fmt.Sprintf("%s %d", c.table, id)
			switch {
			case noLive:
				d.Missing = append(d.Missing, key)
			case noFresh:
				d.Extra = append(d.Extra, key)
			default:
				d.Differ = append(d.Differ, key)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return d, fmt.Errorf("compare %s: %w", c.table, err)
		}
	}
	return d, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
