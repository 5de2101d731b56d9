package dlq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkasource"
)

// Source is where dead letters are read: the dead-letter sinks' topics.
type Source struct {
	Brokers []string
	Topics  []string
}

// clientConfig is a plain reader's and producer's configuration.
func clientConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "jobflow-dlq"
	c.Consumer.Return.Errors = true
	c.Consumer.IsolationLevel = sarama.ReadCommitted // as the sources read
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	return c
}

// Read returns the letters of src that match f, oldest first per
// partition, partitions in order; at most limit (0: all). It reads each
// partition from its first record to the last one present when Read began,
// without a consumer group: nothing moves.
func Read(ctx context.Context, src Source, f Filter, limit int) ([]Letter, error) {
	if len(src.Brokers) == 0 || len(src.Topics) == 0 {
		return nil, errors.New("dlq: no brokers or no dead-letter topics")
	}
	client, err := sarama.NewClient(src.Brokers, clientConfig())
	if err != nil {
		return nil, fmt.Errorf("dlq: connect to %v: %w", src.Brokers, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	defer consumer.Close()
	var out []Letter
	for _, topic := range src.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return nil, fmt.Errorf("dlq: topic %s: %w", topic, err)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, p := range parts {
			got, err := readPartition(ctx, client, consumer, topic, p, f, limit-len(out))
			if err != nil {
				return nil, err
			}
			out = append(out, got...)
			if limit > 0 && len(out) >= limit {
				return out[:limit], nil
			}
		}
	}
	return out, nil
}

// idleEnd is how long a partition may send nothing before what is left of
// it counts as read.
const idleEnd = 10 * time.Second

// readPartition reads one partition from its oldest record to the end it
// had at the start; max <= 0 when the caller has no limit.
func readPartition(ctx context.Context, client sarama.Client, consumer sarama.Consumer, topic string, p int32, f Filter, max int) ([]Letter, error) {
	oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("dlq: %s/%d: oldest offset: %w", topic, p, err)
	}
	end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return nil, fmt.Errorf("dlq: %s/%d: newest offset: %w", topic, p, err)
	}
	if oldest >= end {
		return nil, nil
	}
	pc, err := consumer.ConsumePartition(topic, p, oldest)
	if err != nil {
		return nil, fmt.Errorf("dlq: %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	var out []Letter
	idle := time.NewTimer(idleEnd)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-idle.C:
			// The offsets left are not records (a compacted or
			// transactional topic's gap): the partition is read.
			return out, nil
		case cerr := <-pc.Errors():
			return nil, fmt.Errorf("dlq: %s/%d: %w", topic, p, cerr)
		case m := <-pc.Messages():
			if m == nil {
				return out, nil
			}
			idle.Reset(idleEnd)
			ref := Ref{Topic: topic, Partition: p, Offset: m.Offset}
			e, err := kafkasource.ToEvent(ctx, m, "", "dlq")
			if err != nil {
				return nil, fmt.Errorf("dlq: %s: %w", ref, err)
			}
			if l := newLetter(ref, m.Timestamp, *e); f.Match(l) {
				out = append(out, l)
				if max > 0 && len(out) >= max {
					return out, nil
				}
			}
			if m.Offset >= end-1 {
				return out, nil
			}
		}
	}
}
