// Package converter is the logic of the converter function: it turns job
// events into the sink formats, so that standard Kafka tools can read the
// same topics: a Kafka Connect JSON-with-schema row for the PostgreSQL jobs
// table (default output, K_SINK) and a CSV line for the ClickHouse
// job_events table (output "clickhouse", K_SINK_CLICKHOUSE).
package converter

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// ClickHouseOutput is the named output for CSV lines.
const ClickHouseOutput = "clickhouse"

// Config of the converter; env vars CONVERTER_*.
type Config struct {
	Source string `envconfig:"SOURCE" default:"/jobflow/converter" desc:"CloudEvent source of rows and CSV lines"`
}

// Converter maps job events to sink records.
type Converter struct{ Config }

// New returns a converter configured from CONVERTER_*.
func New() (*Converter, error) {
	var c Converter
	return &c, fn.Process("CONVERTER", &c.Config)
}

// Handle takes job.created, job.finished and job.failed. The ids of the
// outputs derive from the input's source and id, so a redelivered input
// gives outputs that the sinks recognise as duplicates.
func (c *Converter) Handle(_ context.Context, in event.Event) ([]fn.Output, error) {
	var status job.Status
	switch in.Type() {
	case job.TypeCreated:
		status = job.StatusCreate
	case job.TypeFinished:
		status = job.StatusFinish
	case job.TypeFailed:
		status = job.StatusFail
	default:
		return nil, fn.Invalidf("event type %q: the converter takes %s, %s or %s", in.Type(), job.TypeCreated, job.TypeFinished, job.TypeFailed)
	}
	j, err := job.DecodeJob(in)
	if err != nil {
		return nil, fn.Invalid(err)
	}
	if status != job.StatusCreate && j.FinishDate == nil {
		return nil, fn.Invalidf("job %s: %s without finish_date", j.ID, in.Type())
	}
	j.Status = status

	row, err := job.EncodeRow(job.RowOf(j))
	if err != nil {
		return nil, err
	}
	rowEvent := c.event(in, job.TypeRow, "row", j)
	if err := rowEvent.SetData("application/json", row); err != nil {
		return nil, err
	}

	ts := j.CreateDate
	if status != job.StatusCreate {
		ts = *j.FinishDate
	}
	csvEvent := c.event(in, job.TypeCSV, "csv", j)
	line := job.EventLine{JobID: j.ID, Event: status, TS: ts, Sleep: j.Sleep, DataSize: j.DataSize, EventID: csvEvent.ID()}
	if err := csvEvent.SetData("text/csv", job.EncodeCSV(line)); err != nil {
		return nil, err
	}
	return []fn.Output{{To: fn.DefaultOutput, Event: rowEvent}, {To: ClickHouseOutput, Event: csvEvent}}, nil
}

func (c *Converter) event(in event.Event, typ, output string, j job.Job) event.Event {
	e := event.New()
	e.SetID(job.DerivedID(in.Source(), in.ID(), output).String())
	e.SetType(typ)
	e.SetSource(c.Source)
	e.SetSubject(j.ID.String())
	e.SetTime(in.Time())
	e.SetExtension("partitionkey", j.ID.String())
	return e
}

// HandleBatch takes a batched delivery (local engine): every event is
// converted and the rows and CSV lines are emitted as one batch per sink;
// one invalid event fails the batch, whose events the engine then delivers
// one by one (fn.HandleEach).
func (c *Converter) HandleBatch(ctx context.Context, in []event.Event) ([]fn.Output, error) {
	return fn.HandleEach(ctx, c, in)
}
