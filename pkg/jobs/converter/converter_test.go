package converter

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func TestConverterEmitsRowAndCSVForEachStage(t *testing.T) {
	c := &Converter{Config{Source: "/c"}}
	fin := time.UnixMilli(1795455178730).UTC()
	j := job.Job{ID: uuid.New(), CreateDate: time.UnixMilli(1795455178628).UTC(), Sleep: 99, DataSize: 7}
	created, _ := job.NewEvent(job.TypeCreated, "/r", j.ID.String(), j)
	j.FinishDate, j.Checksum = &fin, "sum"
	finished, _ := job.NewEvent(job.TypeFinished, "/p", "f-"+j.ID.String(), j)

	for _, tc := range []struct {
		name   string
		status job.Status
		ts     time.Time
	}{{"created", job.StatusCreate, j.CreateDate}, {"finished", job.StatusFinish, fin}} {
		in := created
		if tc.name == "finished" {
			in = finished
		}
		outs, err := c.Handle(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 2 || outs[0].To != fn.DefaultOutput || outs[1].To != ClickHouseOutput {
			t.Fatalf("%s: outputs %+v", tc.name, outs)
		}
		row, err := job.DecodeRow(outs[0].Event.Data())
		if err != nil || row.ID != j.ID || row.Status != tc.status || outs[0].Event.Type() != job.TypeRow {
			t.Fatalf("%s: row %+v %v", tc.name, row, err)
		}
		lines, err := job.DecodeCSV(outs[1].Event.Data())
		if err != nil || len(lines) != 1 || lines[0].Event != tc.status || !lines[0].TS.Equal(tc.ts) || lines[0].EventID != outs[1].Event.ID() {
			t.Fatalf("%s: csv %+v %v", tc.name, lines, err)
		}
		for _, o := range outs {
			if o.Event.Extensions()["partitionkey"] != j.ID.String() {
				t.Fatalf("%s: outputs must be keyed by job id", tc.name)
			}
		}
		again, _ := c.Handle(context.Background(), in)
		if again[0].Event.ID() != outs[0].Event.ID() || again[1].Event.ID() != outs[1].Event.ID() || outs[0].Event.ID() == outs[1].Event.ID() {
			t.Fatalf("%s: output ids must be derived from the input and differ per output", tc.name)
		}
	}
}

func TestConverterRejects(t *testing.T) {
	c := &Converter{Config{Source: "/c"}}
	j := job.Job{ID: uuid.New(), CreateDate: time.Now()}
	wrong, _ := job.NewEvent("dev.other", "/r", "1", j)
	noFinish, _ := job.NewEvent(job.TypeFinished, "/p", "2", j)
	if _, err := c.Handle(context.Background(), wrong); fn.StatusOf(err) != 400 {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := c.Handle(context.Background(), noFinish); fn.StatusOf(err) != 400 {
		t.Errorf("finished without finish_date: %v", err)
	}
}

// TestConverterBatchEmitsEveryEventsOutputs: a batched delivery yields the
// row and the CSV line of each event, in the batch's order; one invalid
// event fails the batch with its reason and no output.
func TestConverterBatchEmitsEveryEventsOutputs(t *testing.T) {
	c := &Converter{Config{Source: "/c"}}
	var in []event.Event
	for range 20 {
		j := job.Job{ID: uuid.New(), CreateDate: time.Now().UTC(), Sleep: 1, DataSize: 1}
		e, _ := job.NewEvent(job.TypeCreated, "/r", j.ID.String(), j)
		in = append(in, e)
	}
	outs, err := c.HandleBatch(context.Background(), in)
	if err != nil || len(outs) != 2*len(in) {
		t.Fatalf("%d outputs, %v; want %d", len(outs), err, 2*len(in))
	}
	for i, e := range in {
		row, csv := outs[2*i], outs[2*i+1]
		if row.To != fn.DefaultOutput || csv.To != ClickHouseOutput || row.Event.Subject() != e.ID() || csv.Event.Subject() != e.ID() {
			t.Fatalf("event %d: outputs %s→%q, %s→%q", i, row.Event.Subject(), row.To, csv.Event.Subject(), csv.To)
		}
	}
	wrong, _ := job.NewEvent("dev.example.other", "/r", "x", job.Job{ID: uuid.New()})
	in[3] = wrong
	if outs, err := c.HandleBatch(context.Background(), in); fn.StatusOf(err) != 400 || outs != nil {
		t.Fatalf("batch with an event of the wrong type: %v, %d outputs; want a 400 and none", err, len(outs))
	}
}
