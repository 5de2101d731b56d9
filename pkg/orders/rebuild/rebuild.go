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
	sc, err := viewdiff.Prepare(ctx, live.Pool, o.NotifyURL, o.Fresh, o.Replaced)
	if err != nil {
		return d, err
	}
	store, err := notify.Open(ctx, sc.FreshURL)
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
	d, err = sc.Compare(ctx, live.Pool, "customers", "user_id", "username, first_name, last_name, email, phone, version", "customers ")
	if err != nil || !o.Swap || (d.Equal() && !o.Force) {
		return d, err
	}
	if err := sc.Swap(ctx, live.Pool, "customers"); err != nil {
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

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
