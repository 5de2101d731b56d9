// Package jobstest runs the jobs pipeline's log and views for tests: jobs
// go through the real converter into the topics of an in-process broker,
// and into fresh test databases through the real stores.
package jobstest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/converter"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/jobs/verify"
)

// Pipeline is the log and the views of a test: jobs go through the real
// converter into the topics, and from the topics' records into the real
// stores, as pgsink and chsink write them.
type Pipeline struct {
	T       *testing.T
	Where   verify.Where
	conv    *converter.Converter
	prod    sarama.SyncProducer
	Jobs    *jobstore.Store
	Events  *eventstore.Store
	Rows    []job.Row
	Lines   []job.EventLine
	Created []job.Job
}

// New starts a broker with the jobs topics and makes fresh databases with the views.
func New(t *testing.T) *Pipeline {
	t.Helper()
	ctx := context.Background()
	brokers := testenv.Kafka(t, 4, verify.PostgresTopic, verify.ClickHouseTopic)
	pgURL := testenv.PostgresDB(t)
	chAddr, chDB := testenv.ClickHouseDB(t)
	conv, err := converter.New()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jobstore.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(js.Close)
	es, err := eventstore.Open(ctx, chAddr, chDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = es.Close() })
	return &Pipeline{T: t, conv: conv, prod: testenv.Producer(t, brokers), Jobs: js, Events: es,
		Where: verify.Where{Brokers: brokers, PostgresTopic: verify.PostgresTopic, ClickHouseTopic: verify.ClickHouseTopic,
			PostgresURL: pgURL, ClickHouseAddr: chAddr, ClickHouseDB: chDB}}
}

// Emit converts one job event and produces its outputs (twice when dup:
// a redelivery).
func (p *Pipeline) Emit(typ string, j job.Job, dup bool) {
	p.T.Helper()
	in := event.New()
	in.SetID(uuid.NewString())
	in.SetSource("/test")
	in.SetType(typ)
	if err := in.SetData(event.ApplicationJSON, j); err != nil {
		p.T.Fatal(err)
	}
	outs, err := p.conv.Handle(context.Background(), in)
	if err != nil {
		p.T.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for _, o := range outs {
		topic := verify.PostgresTopic
		if o.To == converter.ClickHouseOutput {
			topic = verify.ClickHouseTopic
			ls, err := job.DecodeCSV(o.Event.Data())
			if err != nil {
				p.T.Fatal(err)
			}
			p.Lines = append(p.Lines, ls...)
		} else {
			r, err := job.DecodeRow(o.Event.Data())
			if err != nil {
				p.T.Fatal(err)
			}
			p.Rows = append(p.Rows, r)
		}
		for range map[bool]int{false: 1, true: 2}[dup] {
			m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(j.ID.String())}
			e := o.Event
			if err := kafka_sarama.WriteProducerMessage(context.Background(), binding.ToMessage(&e), m); err != nil {
				p.T.Fatal(err)
			}
			msgs = append(msgs, m)
		}
	}
	if err := p.prod.SendMessages(msgs); err != nil {
		p.T.Fatal(err)
	}
}

// Run makes n jobs: most finish, every 10th fails, every 7th is still
// running; every 5th event is delivered twice.
func (p *Pipeline) Run(n int) {
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	for i := range n {
		j := job.Job{ID: uuid.New(), CreateDate: base.Add(time.Duration(i) * time.Millisecond), Sleep: int64(i % 50), DataSize: int64(100 + i)}
		p.Emit(job.TypeCreated, j, i%5 == 0)
		if i%7 == 3 {
			p.Created = append(p.Created, j)
			continue
		}
		fin := j.CreateDate.Add(time.Duration(10+i) * time.Millisecond)
		j.FinishDate = &fin
		if i%10 == 0 {
			j.Error = fmt.Sprintf("failed %d", i)
			p.Emit(job.TypeFailed, j, i%5 == 0)
		} else {
			j.Checksum = fmt.Sprintf("%064x", i)
			p.Emit(job.TypeFinished, j, i%5 == 0)
		}
	}
}

// Store writes what the topics hold into the views, as the sinks do.
func (p *Pipeline) Store() {
	ctx := context.Background()
	if err := p.Jobs.Upsert(ctx, p.Rows); err != nil {
		p.T.Fatal(err)
	}
	if err := p.Events.Insert(ctx, p.Lines); err != nil {
		p.T.Fatal(err)
	}
}

// Check runs `verify jobs` once.
func (p *Pipeline) Check() (verify.Report, string, error) {
	var out bytes.Buffer
	rep, err := verify.Jobs(context.Background(), verify.JobsOptions{Where: p.Where, Limit: 0}, &out)
	return rep, out.String(), err
}
