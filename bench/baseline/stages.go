package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/jobs/chsink"
	"github.com/jobflow/jobflow/pkg/jobs/converter"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/jobs/pgsink"
	"github.com/jobflow/jobflow/pkg/jobs/processor"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// handler is a function's logic: one event in, its outputs.
type handler func(ctx context.Context, in event.Event) ([]fn.Output, error)

// transform runs h on every event of each batch (concurrently when
// parallel: a processor's sleeps overlap) and produces all the outputs of
// the batch in one SendMessages; topicOf maps an output name to its topic.
// An event h refuses as bad input (a 4xx) goes to the dead-letter topic
// alone; any other error stops the stage.
func transform(ctx context.Context, o options, group string, topics []string, h handler, parallel bool, topicOf map[string]string) error {
	p, err := newProducer(o)
	if err != nil {
		return err
	}
	defer p.Close()
	return consume(ctx, o, group, topics, func(ctx context.Context, msgs []*sarama.ConsumerMessage) error {
		outs := make([][]*sarama.ProducerMessage, len(msgs))
		errs := make([]error, len(msgs))
		one := func(i int) {
			outs[i], errs[i] = apply(ctx, h, msgs[i], topicOf)
		}
		if parallel {
			var wg sync.WaitGroup
			for i := range msgs {
				wg.Add(1)
				go func() { defer wg.Done(); one(i) }()
			}
			wg.Wait()
		} else {
			for i := range msgs {
				one(i)
			}
		}
		var all []*sarama.ProducerMessage
		for i := range msgs {
			if errs[i] != nil {
				return errs[i]
			}
			all = append(all, outs[i]...)
		}
		if err := p.SendMessages(all); err != nil {
			return fmt.Errorf("produce %d records: %w", len(all), err)
		}
		return nil
	})
}

// apply is one event's outputs as records (or its record for the dead-letter topic).
func apply(ctx context.Context, h handler, m *sarama.ConsumerMessage, topicOf map[string]string) ([]*sarama.ProducerMessage, error) {
	e, err := eventOf(m)
	var outs []fn.Output
	if err == nil {
		outs, err = h(ctx, *e)
	} else {
		err = fn.Invalid(err)
	}
	var se *fn.StatusError
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 {
		slog.Warn("dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
		return []*sarama.ProducerMessage{deadLetter(m)}, nil
	}
	if err != nil {
		return nil, err
	}
	recs := make([]*sarama.ProducerMessage, 0, len(outs))
	for _, out := range outs {
		topic, ok := topicOf[out.To]
		if !ok {
			return nil, fmt.Errorf("output %q has no topic", out.To)
		}
		r, err := record(topic, out.Event)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

func runProcessor(ctx context.Context, o options) error {
	p, err := processor.New()
	if err != nil {
		return err
	}
	return transform(ctx, o, "baseline-processor", []string{receiverTopic}, p.Handle, true,
		map[string]string{fn.DefaultOutput: processorTopic})
}

func runConverter(ctx context.Context, o options) error {
	c, err := converter.New()
	if err != nil {
		return err
	}
	return transform(ctx, o, "baseline-converter", []string{receiverTopic, processorTopic}, c.Handle, false,
		map[string]string{fn.DefaultOutput: postgresTopic, converter.ClickHouseOutput: clickhouseTopic})
}

// write consumes topic and hands each batch's items to a group commit
// (pkg/runtime/batch with cfg) that writes them with flush; a batch's
// offsets are marked after its items committed. A record whose payload
// cannot be decoded goes to the dead-letter topic.
func write[T any](ctx context.Context, o options, topic, typ string, cfg batch.Config, flush batch.Flush[T], decode func([]T, []byte) ([]T, error)) error {
	p, err := newProducer(o)
	if err != nil {
		return err
	}
	defer p.Close()
	b := batch.New(cfg, flush)
	stop := b.Start()
	defer stop()
	return consume(ctx, o, "baseline-"+topic, []string{topic}, func(ctx context.Context, msgs []*sarama.ConsumerMessage) error {
		items := make([]T, 0, len(msgs))
		var bad []*sarama.ProducerMessage
		for _, m := range msgs {
			var err error
			before := len(items)
			if t := header(m, "ce_type"); t != typ {
				err = fmt.Errorf("event type %q, want %s", t, typ)
			} else {
				items, err = decode(items, m.Value)
			}
			if err != nil {
				items = items[:before]
				slog.Warn("dead-lettered", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
				bad = append(bad, deadLetter(m))
			}
		}
		if len(bad) > 0 {
			if err := p.SendMessages(bad); err != nil {
				return fmt.Errorf("dead-letter %d records: %w", len(bad), err)
			}
		}
		return b.Add(ctx, items...)
	})
}

func runPGWriter(ctx context.Context, o options) error {
	s, err := jobstore.Open(ctx, o.PostgresURL)
	if err != nil {
		return err
	}
	defer s.Close()
	return write(ctx, o, postgresTopic, job.TypeRow, pgsink.Batch, s.Upsert, func(dst []job.Row, v []byte) ([]job.Row, error) {
		r, err := job.DecodeRow(v)
		if err != nil {
			return dst, err
		}
		return append(dst, r), nil
	})
}

func runCHWriter(ctx context.Context, o options) error {
	s, err := eventstore.Open(ctx, o.ClickHouseAddr, o.ClickHouseDB)
	if err != nil {
		return err
	}
	defer s.Close()
	return write(ctx, o, clickhouseTopic, job.TypeCSV, chsink.Batch, s.Insert, job.AppendCSVLines)
}
