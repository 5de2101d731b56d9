package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Topics of brokers/topics.yaml the job pipeline uses.
const (
	receiverTopic   = "receiver-topic"
	processorTopic  = "processor-topic"
	postgresTopic   = "postgres-topic"
	clickhouseTopic = "clickhouse-topic"
	deadLetterTopic = "dead-letter-topic"
)

func saramaConfig(o options) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "jobflow-baseline"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForLocal
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.IsolationLevel = sarama.ReadCommitted // as the engine's consumers
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Consumer.MaxWaitTime = o.FetchWait
	c.Consumer.Fetch.Default = 4 << 20
	c.ChannelBufferSize = 1024
	return c
}

func newProducer(o options) (sarama.SyncProducer, error) {
	p, err := sarama.NewSyncProducer(o.Brokers, saramaConfig(o))
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return p, nil
}

// record is e as a binary-mode record of topic, keyed by its partitionkey
// (what jobflow's KafkaSink ingress writes).
func record(topic string, e event.Event) (*sarama.ProducerMessage, error) {
	pm := &sarama.ProducerMessage{Topic: topic}
	if err := kafka_sarama.WriteProducerMessage(binding.WithForceBinary(context.Background()), binding.ToMessage(&e), pm); err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
	}
	return pm, nil
}

// eventOf decodes a record into its CloudEvent.
func eventOf(m *sarama.ConsumerMessage) (*event.Event, error) {
	e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(m))
	if err != nil {
		return nil, fmt.Errorf("record %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return e, nil
}

// header is the value of a record's header key ("" if none).
func header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// deadLetter is the record as it came, for the dead-letter topic.
func deadLetter(m *sarama.ConsumerMessage) *sarama.ProducerMessage {
	pm := &sarama.ProducerMessage{Topic: deadLetterTopic, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value)}
	for _, h := range m.Headers {
		pm.Headers = append(pm.Headers, *h)
	}
	return pm
}

// handleBatch does a batch's work; an error stops the stage (nothing of the
// batch is marked, so it is consumed again after a restart).
type handleBatch func(ctx context.Context, msgs []*sarama.ConsumerMessage) error

// consume runs a consumer group on topics until ctx ends or a batch fails.
// Each partition's reader takes the records already fetched (up to
// o.MaxBatch) as one batch, hands it to handle and goes on reading while it
// runs, up to o.InFlight batches; a batch's offsets are marked once it and
// every batch before it are done.
func consume(ctx context.Context, o options, group string, topics []string, handle handleBatch) error {
	cg, err := sarama.NewConsumerGroup(o.Brokers, group, saramaConfig(o))
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", group, err)
	}
	defer cg.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	h := &claims{o: o, handle: handle, fail: cancel}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, topics, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return fmt.Errorf("consume %v: %w", topics, err)
		}
	}
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

type claims struct {
	o      options
	handle handleBatch
	fail   context.CancelCauseFunc
}

func (c *claims) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *claims) Cleanup(sarama.ConsumerGroupSession) error { return nil }

type inFlight struct {
	last *sarama.ConsumerMessage
	done chan error
}

func (c *claims) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	pending := make(chan inFlight, max(c.o.InFlight-1, 0))
	marked := make(chan struct{})
	go func() { // marks in order
		defer close(marked)
		for b := range pending {
			if err := <-b.done; err != nil {
				c.fail(err)
				for range pending {
				}
				return
			}
			sess.MarkMessage(b.last, "")
		}
	}()
	defer func() { close(pending); <-marked }()
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, m)
		}
		open := true
	fill:
		for open && len(batch) < c.o.MaxBatch {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		b := inFlight{last: batch[len(batch)-1], done: make(chan error, 1)}
		go func(batch []*sarama.ConsumerMessage) { b.done <- c.handle(ctx, batch) }(batch)
		select {
		case pending <- b:
		case <-ctx.Done():
			return nil
		}
		if !open {
			return nil
		}
	}
}
