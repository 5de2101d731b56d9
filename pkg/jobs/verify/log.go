// Package verify is `jobflow verify jobs`: the jobs pipeline's log (the
// postgres-topic's rows and the clickhouse-topic's CSV lines the converter
// wrote) checked against the PostgreSQL jobs table and the ClickHouse
// job_events table derived from it. The log it reads is also what
// `jobflow rebuild` replays into fresh tables.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
)

// Default topics of the jobs pipeline (brokers/topics.yaml).
const (
	PostgresTopic   = "postgres-topic"
	ClickHouseTopic = "clickhouse-topic"
)

// Log is what the pipeline's topics say the views must hold.
type Log struct {
	// Rows are the jobs rows of the postgres-topic, merged per job as the
	// jobs table's upsert merges them.
	Rows map[uuid.UUID]job.Row
	// Lines are the job_events lines of the clickhouse-topic, one per
	// (job, event): the table's key, so duplicates collapse as in the table.
	Lines map[uuid.UUID]map[job.Status]job.EventLine
	// Records read, and records that were not the pipeline's (skipped).
	Records, Skipped int
	// Ends are the offsets read up to, per topic and partition: the From
	// of a later read that takes only what came since.
	Ends Offsets
}

// Offsets by topic and partition.
type Offsets map[string]map[int32]int64

func (o Offsets) set(topic string, p int32, off int64) {
	if o[topic] == nil {
		o[topic] = map[int32]int64{}
	}
	o[topic][p] = off
}

// LineList is every line of the log, in no order.
func (l *Log) LineList() []job.EventLine {
	var out []job.EventLine
	for _, byEvent := range l.Lines {
		for _, line := range byEvent {
			out = append(out, line)
		}
	}
	return out
}

// RowList is every row of the log, in no order.
func (l *Log) RowList() []job.Row {
	out := make([]job.Row, 0, len(l.Rows))
	for _, r := range l.Rows {
		out = append(out, r)
	}
	return out
}

// ReadOptions say where the log is.
type ReadOptions struct {
	Brokers         []string
	PostgresTopic   string    // "" for PostgresTopic
	ClickHouseTopic string    // "" for ClickHouseTopic
	Progress        io.Writer // a line every 100,000 records (nil: none)
	From            Offsets   // read from these offsets on (nil: from the oldest)
}

// ReadLog reads both topics from their oldest record to the end they had
// when ReadLog began, without a consumer group: nothing moves.
func ReadLog(ctx context.Context, o ReadOptions) (*Log, error) {
	if len(o.Brokers) == 0 {
		return nil, errors.New("verify jobs: no Kafka brokers")
	}
	if o.PostgresTopic == "" {
		o.PostgresTopic = PostgresTopic
	}
	if o.ClickHouseTopic == "" {
		o.ClickHouseTopic = ClickHouseTopic
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "jobflow-verify"
	cfg.Consumer.Return.Errors = true
	client, err := sarama.NewClient(o.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w", o.Brokers, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	l := &Log{Rows: map[uuid.UUID]job.Row{}, Lines: map[uuid.UUID]map[job.Status]job.EventLine{}, Ends: Offsets{}}
	r := reader{client: client, consumer: consumer, log: l, progress: o.Progress, from: o.From}
	if err := r.topic(ctx, o.PostgresTopic, l.addRow); err != nil {
		return nil, err
	}
	if err := r.topic(ctx, o.ClickHouseTopic, l.addLines); err != nil {
		return nil, err
	}
	return l, nil
}

type reader struct {
	client   sarama.Client
	consumer sarama.Consumer
	log      *Log
	progress io.Writer
	from     Offsets
	mu       sync.Mutex // over log
}

// idleEnd is how long a partition may send nothing before what is left of
// it (offsets that are not records) counts as read.
const idleEnd = 10 * time.Second

func (r *reader) topic(ctx context.Context, topic string, add func(typ string, data []byte) bool) error {
	parts, err := r.client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	// Partitions are read at once: each read waits for its fetches.
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	for i, p := range parts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.partition(ctx, topic, p, add) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *reader) partition(ctx context.Context, topic string, p int32, add func(typ string, data []byte) bool) error {
	oldest, err := r.client.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("%s/%d: oldest offset: %w", topic, p, err)
	}
	end, err := r.client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("%s/%d: newest offset: %w", topic, p, err)
	}
	r.mu.Lock()
	r.log.Ends.set(topic, p, end)
	r.mu.Unlock()
	if from, ok := r.from[topic][p]; ok && from > oldest {
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
			e, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(m))
			r.mu.Lock()
			r.log.Records++
			if err != nil || !add(e.Type(), e.Data()) {
				r.log.Skipped++
			}
			if r.progress != nil && r.log.Records%100000 == 0 {
				fmt.Fprintf(r.progress, "read %d records (%s/%d at %d of %d)\n", r.log.Records, topic, p, m.Offset, end)
			}
			r.mu.Unlock()
			if m.Offset >= end-1 {
				return nil
			}
		}
	}
}

// addRow merges one postgres-topic record; false if it is not a jobs row.
func (l *Log) addRow(typ string, data []byte) bool {
	if typ != job.TypeRow {
		return false
	}
	row, err := job.DecodeRow(data)
	if err != nil {
		return false
	}
	if have, ok := l.Rows[row.ID]; ok {
		row = jobstore.MergeRow(have, row)
	}
	l.Rows[row.ID] = row
	return true
}

// addLines adds one clickhouse-topic record's lines; false if it has none.
func (l *Log) addLines(typ string, data []byte) bool {
	if typ != job.TypeCSV {
		return false
	}
	lines, err := job.DecodeCSV(data)
	if err != nil || len(lines) == 0 {
		return false
	}
	for _, line := range lines {
		byEvent := l.Lines[line.JobID]
		if byEvent == nil {
			byEvent = map[job.Status]job.EventLine{}
			l.Lines[line.JobID] = byEvent
		}
		byEvent[line.Event] = line
	}
	return true
}
