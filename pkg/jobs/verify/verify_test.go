package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
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

// pipeline is the log and the views of a test: jobs go through the real
// converter into the topics, and from the topics' records into the real
// stores, as pgsink and chsink write them.
type pipeline struct {
	t       *testing.T
	where   verify.Where
	conv    *converter.Converter
	prod    sarama.SyncProducer
	jobs    *jobstore.Store
	events  *eventstore.Store
	rows    []job.Row
	lines   []job.EventLine
	created []job.Job
}

func newPipeline(t *testing.T) *pipeline {
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
	return &pipeline{t: t, conv: conv, prod: testenv.Producer(t, brokers), jobs: js, events: es,
		where: verify.Where{Brokers: brokers, PostgresTopic: verify.PostgresTopic, ClickHouseTopic: verify.ClickHouseTopic,
			PostgresURL: pgURL, ClickHouseAddr: chAddr, ClickHouseDB: chDB}}
}

// emit converts one job event and produces its outputs (twice when dup:
// a redelivery).
func (p *pipeline) emit(typ string, j job.Job, dup bool) {
	p.t.Helper()
	in := event.New()
	in.SetID(uuid.NewString())
	in.SetSource("/test")
	in.SetType(typ)
	if err := in.SetData(event.ApplicationJSON, j); err != nil {
		p.t.Fatal(err)
	}
	outs, err := p.conv.Handle(context.Background(), in)
	if err != nil {
		p.t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for _, o := range outs {
		topic := verify.PostgresTopic
		if o.To == converter.ClickHouseOutput {
			topic = verify.ClickHouseTopic
			ls, err := job.DecodeCSV(o.Event.Data())
			if err != nil {
				p.t.Fatal(err)
			}
			p.lines = append(p.lines, ls...)
		} else {
			r, err := job.DecodeRow(o.Event.Data())
			if err != nil {
				p.t.Fatal(err)
			}
			p.rows = append(p.rows, r)
		}
		for range map[bool]int{false: 1, true: 2}[dup] {
			m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(j.ID.String())}
			e := o.Event
			if err := kafka_sarama.WriteProducerMessage(context.Background(), binding.ToMessage(&e), m); err != nil {
				p.t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
	}
	if err := p.prod.SendMessages(msgs); err != nil {
		p.t.Fatal(err)
	}
}

// run makes n jobs: most finish, every 10th fails, every 7th is still
// running; every 5th event is delivered twice.
func (p *pipeline) run(n int) {
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	for i := range n {
		j := job.Job{ID: uuid.New(), CreateDate: base.Add(time.Duration(i) * time.Millisecond), Sleep: int64(i % 50), DataSize: int64(100 + i)}
		p.emit(job.TypeCreated, j, i%5 == 0)
		if i%7 == 3 {
			p.created = append(p.created, j)
			continue
		}
		fin := j.CreateDate.Add(time.Duration(10+i) * time.Millisecond)
		j.FinishDate = &fin
		if i%10 == 0 {
			j.Error = fmt.Sprintf("failed %d", i)
			p.emit(job.TypeFailed, j, i%5 == 0)
		} else {
			j.Checksum = fmt.Sprintf("%064x", i)
			p.emit(job.TypeFinished, j, i%5 == 0)
		}
	}
}

// store writes what the topics hold into the views, as the sinks do.
func (p *pipeline) store() {
	ctx := context.Background()
	if err := p.jobs.Upsert(ctx, p.rows); err != nil {
		p.t.Fatal(err)
	}
	if err := p.events.Insert(ctx, p.lines); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pipeline) check() (verify.Report, string, error) {
	var out bytes.Buffer
	rep, err := verify.Jobs(context.Background(), verify.JobsOptions{Where: p.where, Limit: 0}, &out)
	return rep, out.String(), err
}

func TestVerifyJobsNoDriftThenDrift(t *testing.T) {
	p := newPipeline(t)
	const n = 300
	p.run(n)
	p.store()
	running := len(p.created)

	rep, out, err := p.check()
	if err != nil {
		t.Fatalf("verify of a faithful pipeline: %v\n%s", err, out)
	}
	if rep.Checked != n-running || rep.Skipped != running {
		t.Fatalf("checked %d, skipped %d; want %d and %d\n%s", rep.Checked, rep.Skipped, n-running, running, out)
	}

	// Damage the views: a checksum changed, a row gone, a status moved
	// back, an event gone, an event the log never had.
	ctx := context.Background()
	finished := p.rows[len(p.rows)-1] // the last job's final row
	if finished.Status != job.StatusFinish {
		t.Fatalf("last row is %s", finished.Status)
	}
	var victims []uuid.UUID
	for _, r := range p.rows {
		if r.Status == job.StatusFinish && r.ID != finished.ID {
			victims = append(victims, r.ID)
		}
	}
	mustExec := func(q string, args ...any) {
		if _, err := p.jobs.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec("UPDATE jobs SET checksum = 'bad' WHERE id = $1", victims[0])
	mustExec("DELETE FROM jobs WHERE id = $1", victims[1])
	mustExec("UPDATE jobs SET status = 'create' WHERE id = $1", victims[2])
	// ClickHouse: job_events rebuilt without one job's finish line, plus a
	// fail line for another job.
	if err := p.events.Conn.Exec(ctx, "CREATE TABLE job_events_keep AS job_events"); err != nil {
		t.Fatal(err)
	}
	if err := p.events.Conn.Exec(ctx, fmt.Sprintf("INSERT INTO job_events_keep SELECT * FROM job_events WHERE NOT (job_id = toUUID('%s') AND event = 'finish')", victims[3])); err != nil {
		t.Fatal(err)
	}
	if err := p.events.Conn.Exec(ctx, "DROP TABLE job_events"); err != nil {
		t.Fatal(err)
	}
	if err := p.events.Conn.Exec(ctx, "RENAME TABLE job_events_keep TO job_events"); err != nil {
		t.Fatal(err)
	}
	extra := job.EventLine{JobID: victims[4], Event: job.StatusFail, TS: time.Now().UTC(), EventID: "x"}
	if err := p.events.Insert(ctx, []job.EventLine{extra}); err != nil {
		t.Fatal(err)
	}

	rep, out, err = p.check()
	if !errors.Is(err, verify.ErrDrift) {
		t.Fatalf("verify of damaged views: err %v, want ErrDrift\n%s", err, out)
	}
	want := map[uuid.UUID]string{
		victims[0]: `checksum "bad"`,
		victims[1]: "no row in jobs",
		victims[2]: `status "create", the log says "finish"`,
		victims[3]: "event finish missing in ClickHouse",
		victims[4]: "event fail in ClickHouse is not in the log",
	}
	if len(rep.Drifts) != len(want) {
		t.Fatalf("%d drifts, want %d\n%s", len(rep.Drifts), len(want), out)
	}
	for _, d := range rep.Drifts {
		if !strings.Contains(d.What, want[d.JobID]) || want[d.JobID] == "" {
			t.Errorf("job %s: drift %q, want %q", d.JobID, d.What, want[d.JobID])
		}
		if !strings.Contains(out, d.JobID.String()) {
			t.Errorf("report does not name %s:\n%s", d.JobID, out)
		}
	}
}
