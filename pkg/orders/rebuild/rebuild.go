// Package rebuild is `jobflow rebuild customers`: notify's customers
// table (the table side of its stream-table join) made again from the
// compacted orders-users topic by notify's own store (Store.Customer: the
// same upsert, a newer version wins), compared with the live table and,
// on request, swapped in for it in one transaction.
//
// The topic is compacted, so it keeps at least the newest version of every
// user: the rebuild equals the live table whenever notify has read the
// topic to its end.
package rebuild

import (
	"context"
	"fmt"
	"io"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/notify"
	"github.com/jobflow/jobflow/pkg/runtime/topicread"
	"github.com/jobflow/jobflow/pkg/runtime/viewdiff"
)

// Defaults: the topic of triggers/notify-users-source.yaml and the schemas
// of the fresh and the replaced table.
const (
	Topic    = "orders-users"
	Fresh    = "jobflow_rebuild"
	Replaced = "jobflow_replaced"
)

// Options of a customers rebuild.
type Options struct {
	Brokers   []string
	Topic     string // "" for Topic
	NotifyURL string // the notify database
	Fresh     string // "" for Fresh
	Replaced  string // "" for Replaced
	Swap      bool
	Force     bool // with Swap: swap even if equal
}

// Customers rebuilds, compares and swaps if asked.
func Customers(ctx context.Context, o Options, out io.Writer) (viewdiff.Diff, error) {
	var d viewdiff.Diff
	o.Topic, o.Fresh, o.Replaced = or(o.Topic, Topic), or(o.Fresh, Fresh), or(o.Replaced, Replaced)
	live, err := notify.Open(ctx, o.NotifyURL)
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
	freshURL, err := viewdiff.WithSearchPath(o.NotifyURL, o.Fresh)
	if err != nil {
		return d, err
	}
	store, err := notify.Open(ctx, freshURL)
	if err != nil {
		return d, err
	}
	defer store.Close()

	fmt.Fprintf(out, "customers: reading %s...\n", o.Topic)
	ends, n, err := apply(ctx, store, o, nil, out)
	if err != nil {
		return d, err
	}
	fmt.Fprintf(out, "customers: %d versions applied\n", n)
	if d, err = compare(ctx, live, liveSchema, o.Fresh); err != nil {
		return d, err
	}
	if !o.Swap || (d.Equal() && !o.Force) {
		return d, nil
	}
	if err := swap(ctx, live, liveSchema, o); err != nil {
		return d, err
	}
	d.Swapped = true
	// Catch up: the versions notify applied to the old table meanwhile.
	_, d.CaughtUp, err = apply(ctx, live, o, ends, nil)
	return d, err
}

// apply reads the topic from from (nil: the oldest) and upserts every
// version into s.
func apply(ctx context.Context, s *notify.Store, o Options, from topicread.Offsets, out io.Writer) (topicread.Offsets, int, error) {
	n := 0
	res, err := topicread.Read(ctx, topicread.Options{Brokers: o.Brokers, Topics: []string{o.Topic}, From: from, Progress: out},
		func(m *sarama.ConsumerMessage) error {
			if m.Value == nil {
				return nil // a tombstone: notify never gets one either
			}
			e, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(m))
			if err != nil {
				return nil // not a CloudEvent: notify's source dead-letters it
			}
			var u events.UserChanged
			if events.Decode(*e, events.TypeUser, &u) != nil {
				return nil // notify refuses it too
			}
			n++
			return s.Customer(ctx, u)
		})
	return res.Ends, n, err
}

// compare compares the customers tables of both schemas; keys are
// "customers <user_id>".
func compare(ctx context.Context, s *notify.Store, liveSchema, freshSchema string) (viewdiff.Diff, error) {
	var d viewdiff.Diff
	l, f := pgx.Identifier{liveSchema, "customers"}.Sanitize(), pgx.Identifier{freshSchema, "customers"}.Sanitize()
	if err := s.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+l+"), (SELECT count(*) FROM "+f+")").Scan(&d.Live, &d.Rebuilt); err != nil {
		return d, fmt.Errorf("count customers: %w", err)
	}
	rows, err := s.Pool.Query(ctx, fmt.Sprintf(`
		SELECT coalesce(l.user_id, r.user_id), l.user_id IS NULL, r.user_id IS NULL
		FROM %s l FULL JOIN %s r ON l.user_id = r.user_id
		WHERE l.user_id IS NULL OR r.user_id IS NULL
			OR ROW(l.username, l.first_name, l.last_name, l.email, l.phone, l.version)
			IS DISTINCT FROM ROW(r.username, r.first_name, r.last_name, r.email, r.phone, r.version)
		ORDER BY 1`, l, f))
	if err != nil {
		return d, fmt.Errorf("compare customers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var noLive, noFresh bool
		if err := rows.Scan(&id, &noLive, &noFresh); err != nil {
			return d, fmt.Errorf("compare customers: %w", err)
		}
		key := fmt.Sprintf("customers %d", id)
		switch {
		case noLive:
			d.Missing = append(d.Missing, key)
		case noFresh:
			d.Extra = append(d.Extra, key)
		default:
			d.Differ = append(d.Differ, key)
		}
	}
	return d, rows.Err()
}

// swap moves the live customers table to the replaced schema and the
// rebuilt one in its place, in one transaction.
func swap(ctx context.Context, s *notify.Store, liveSchema string, o Options) error {
	replaced := pgx.Identifier{o.Replaced}.Sanitize()
	q := "CREATE SCHEMA IF NOT EXISTS " + replaced +
		"; DROP TABLE IF EXISTS " + pgx.Identifier{o.Replaced, "customers"}.Sanitize() +
		"; ALTER TABLE " + pgx.Identifier{liveSchema, "customers"}.Sanitize() + " SET SCHEMA " + replaced +
		"; ALTER TABLE " + pgx.Identifier{o.Fresh, "customers"}.Sanitize() + " SET SCHEMA " + pgx.Identifier{liveSchema}.Sanitize()
	if err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, q); return err }); err != nil {
		return fmt.Errorf("swap customers table: %w", err)
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
