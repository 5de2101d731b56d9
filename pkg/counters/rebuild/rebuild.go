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

	"github.com/IBM/sarama"

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
	live, err := counter.Open(ctx, o.CountersURL)
	if err != nil {
		return d, err
	}
	defer live.Close()
	sc, err := viewdiff.Prepare(ctx, live.Pool, o.CountersURL, o.Fresh, o.Replaced)
	if err != nil {
		return d, err
	}
	store, err := counter.Open(ctx, sc.FreshURL)
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
	if d, err = compare(ctx, live, sc); err != nil {
		return d, err
	}
	if !o.Swap || (d.Equal() && !o.Force) {
		return d, nil
	}
	if err := sc.Swap(ctx, live.Pool, tables...); err != nil {
		return d, err
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
func compare(ctx context.Context, s *counter.Store, sc viewdiff.Schemas) (viewdiff.Diff, error) {
	var d viewdiff.Diff
	for _, c := range []struct{ table, key, cols string }{
		{"counters", "user_id", "total, unread"},
		{"users", "id", "name, deleted"},
	} {
		t, err := sc.Compare(ctx, s.Pool, c.table, c.key, c.cols, c.table+" ")
		if err != nil {
			return d, err
		}
		d.Add(t)
	}
	return d, nil
}
