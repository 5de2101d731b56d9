// Package verify is `jobflow verify jobs`: the jobs pipeline's log (the
// postgres-topic's rows and the clickhouse-topic's CSV lines the converter
// wrote) checked against the PostgreSQL jobs table and the ClickHouse
// job_events table derived from it. The log it reads is also what
// `jobflow rebuild` replays into fresh tables.
package verify

import (
	"context"
	"errors"
	"io"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/runtime/topicread"
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
	Ends topicread.Offsets
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
	PostgresTopic   string            // "" for PostgresTopic
	ClickHouseTopic string            // "" for ClickHouseTopic
	Progress        io.Writer         // a line every 100,000 records (nil: none)
	From            topicread.Offsets // read from these offsets on (nil: from the oldest)
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
	l := &Log{Rows: map[uuid.UUID]job.Row{}, Lines: map[uuid.UUID]map[job.Status]job.EventLine{}}
	res, err := topicread.Read(ctx, topicread.Options{Brokers: o.Brokers, Topics: []string{o.PostgresTopic, o.ClickHouseTopic},
		From: o.From, Progress: o.Progress}, func(m *sarama.ConsumerMessage) error {
		add := l.addLines
		if m.Topic == o.PostgresTopic {
			add = l.addRow
		}
		e, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(m))
		l.Records++
		if err != nil || !add(e.Type(), e.Data()) {
			l.Skipped++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.Ends = res.Ends
	return l, nil
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
