package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/jobflow/jobflow/pkg/config/change"
)

// Follower reads the config topic from its first record into a Table and
// keeps following it. Every instance reads the whole topic on its own (no
// consumer group): the table is local, so a restart or a new instance
// needs nothing but the topic.
type Follower struct {
	Brokers []string
	Topic   string
	Table   *Table
	Log     *slog.Logger
	// Applied, when set, is called after each record (metrics).
	Applied func(visible bool)
}

// Run follows the topic until ctx ends, reconnecting after failures. The
// topic must have one partition: its offsets are the one order of changes
// that subscribers resume from.
func (f *Follower) Run(ctx context.Context) error {
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errPartitions) {
			return err
		}
		f.Log.Warn("config topic: reading failed, retrying", "topic", f.Topic, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

var errPartitions = errors.New("the config topic must have exactly one partition (its offsets are the order subscribers resume from)")

func (f *Follower) follow(ctx context.Context) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.ClientID = "jobflow-config-table"
	sc.Consumer.Return.Errors = true
	sc.Consumer.IsolationLevel = sarama.ReadCommitted // as every consumer of the engine
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	client, err := sarama.NewClient(f.Brokers, sc)
	if err != nil {
		return fmt.Errorf("connect %v: %w", f.Brokers, err)
	}
	defer client.Close()
	parts, err := client.Partitions(f.Topic)
	if err != nil {
		return fmt.Errorf("topic %s: %w", f.Topic, err)
	}
	if len(parts) != 1 {
		return fmt.Errorf("topic %s has %d partitions: %w", f.Topic, len(parts), errPartitions)
	}
	end, err := client.GetOffset(f.Topic, 0, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("topic %s end: %w", f.Topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	from := f.Table.Head() // seq = offset+1: the next offset to read
	if from == 0 {
		from = sarama.OffsetOldest
	}
	pc, err := consumer.ConsumePartition(f.Topic, 0, from)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		pc, err = consumer.ConsumePartition(f.Topic, 0, sarama.OffsetOldest)
	}
	if err != nil {
		return fmt.Errorf("consume %s: %w", f.Topic, err)
	}
	defer pc.Close()
	if f.Table.Head() >= end {
		f.Table.MarkReady()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-pc.Errors():
			return err
		case m := <-pc.Messages():
			visible := f.Table.Apply(m.Offset+1, f.decode(ctx, m))
			if f.Applied != nil {
				f.Applied(visible)
			}
			if m.Offset+1 >= end {
				f.Table.MarkReady()
			}
		}
	}
}

// decode reads a record as a change; a record that is not one is logged
// and skipped (it keeps its place in the sequence).
func (f *Follower) decode(ctx context.Context, m *sarama.ConsumerMessage) *change.Change {
	e, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(m))
	if err == nil {
		var c change.Change
		if c, err = change.FromEvent(*e); err == nil {
			return &c
		}
	}
	f.Log.Warn("config topic: a record that is not a change, skipped", "offset", m.Offset, "err", err)
	return nil
}
