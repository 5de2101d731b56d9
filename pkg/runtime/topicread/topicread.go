// Package topicread reads topics from their oldest record (or given
// offsets) to the end they had when the read began, without a consumer
// group: nothing moves. Verifiers and rebuilds read the log with it.
package topicread

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Offsets by topic and partition.
type Offsets map[string]map[int32]int64

func (o Offsets) set(topic string, p int32, off int64) {
	if o[topic] == nil {
		o[topic] = map[int32]int64{}
	}
	o[topic][p] = off
}

// Options of a read.
type Options struct {
	Brokers  []string
	Topics   []string
	From     Offsets   // read from these offsets on (nil or absent: the oldest)
	Progress io.Writer // a line every 100,000 records (nil: none)
}

// Result of a read.
type Result struct {
	Ends    Offsets // the offsets read up to: the From of a later read that takes only what came since
	Records int
}

// idleEnd is how long a partition may send nothing before what is left of
// it (offsets that are not records) counts as read.
const idleEnd = 10 * time.Second

// Read calls fn for every record of the topics, one call at a time
// (partitions are read at once, each in order); an error of fn ends it.
func Read(ctx context.Context, o Options, fn func(m *sarama.ConsumerMessage) error) (Result, error) {
	res := Result{Ends: Offsets{}}
	if len(o.Brokers) == 0 {
		return res, errors.New("no Kafka brokers")
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "jobflow-topicread"
	cfg.Consumer.Return.Errors = true
	// Only committed records: an aborted transaction (a CDC snapshot that
	// died) never counts. The transactions' commit markers take offsets a
	// consumer never receives; the idle end below covers them.
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(o.Brokers, cfg)
	if err != nil {
		return res, fmt.Errorf("connect to %v: %w", o.Brokers, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return res, err
	}
	defer consumer.Close()
	r := reader{client: client, consumer: consumer, o: o, fn: fn, res: &res}
	for _, topic := range o.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return res, fmt.Errorf("topic %s: %w", topic, err)
		}
		// Partitions are read at once: each read waits for its fetches.
		var wg sync.WaitGroup
		errs := make([]error, len(parts))
		for i, p := range parts {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = r.partition(ctx, topic, p) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return res, err
		}
	}
	return res, nil
}

type reader struct {
	client   sarama.Client
	consumer sarama.Consumer
	o        Options
	fn       func(m *sarama.ConsumerMessage) error
	mu       sync.Mutex // over res and fn's calls
	res      *Result
}

func (r *reader) partition(ctx context.Context, topic string, p int32) error {
	oldest, err := r.client.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("%s/%d: oldest offset: %w", topic, p, err)
	}
	end, err := r.client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("%s/%d: newest offset: %w", topic, p, err)
	}
	r.mu.Lock()
	r.res.Ends.set(topic, p, end)
	r.mu.Unlock()
	if from, ok := r.o.From[topic][p]; ok && from > oldest {
		oldest = from
	}
	if oldest >= end {
		return nil
	}
	pc, err := r.consumer.ConsumePartition(topic, p, oldest)
	if err != nil {
		return fmt.Errorf("%s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	idle := time.NewTimer(idleEnd)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle.C:
			return nil
		case cerr := <-pc.Errors():
			return fmt.Errorf("%s/%d: %w", topic, p, cerr)
		case m := <-pc.Messages():
			if m == nil {
				return nil
			}
			idle.Reset(idleEnd)
			r.mu.Lock()
			r.res.Records++
			err := r.fn(m)
			if r.o.Progress != nil && r.res.Records%100000 == 0 {
				fmt.Fprintf(r.o.Progress, "read %d records (%s/%d at %d of %d)\n", r.res.Records, topic, p, m.Offset, end)
			}
			r.mu.Unlock()
			if err != nil {
				return fmt.Errorf("%s/%d/%d: %w", topic, p, m.Offset, err)
			}
			if m.Offset >= end-1 {
				return nil
			}
		}
	}
}
