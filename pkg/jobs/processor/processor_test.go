package processor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func created(t *testing.T, sleep, size int64) job.Job {
	t.Helper()
	return job.Job{ID: uuid.New(), Status: job.StatusCreate, CreateDate: time.Now().UTC(), Sleep: sleep, DataSize: size}
}

func newProcessor(slept *time.Duration) *Processor {
	return &Processor{Config: Config{MaxSleep: time.Second, MaxDataSize: 1 << 20, Source: "/p"},
		Sleep: func(_ context.Context, d time.Duration) error { *slept += d; return nil }, Now: time.Now}
}

func TestProcessorFinishes(t *testing.T) {
	var slept time.Duration
	p := newProcessor(&slept)
	j := created(t, 250, 100)
	in, _ := job.NewEvent(job.TypeCreated, "/r", j.ID.String(), j)
	outs, err := p.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if slept != 250*time.Millisecond {
		t.Fatalf("slept %s, want 250ms", slept)
	}
	if len(outs) != 1 || outs[0].To != fn.DefaultOutput || outs[0].Event.Type() != job.TypeFinished {
		t.Fatalf("outputs = %+v", outs)
	}
	done, err := job.DecodeJob(outs[0].Event)
	if err != nil || done.Status != job.StatusFinish || done.FinishDate == nil || done.Checksum != Checksum(j) || len(done.Checksum) != 64 {
		t.Fatalf("finished job = %+v %v", done, err)
	}
	again, _ := p.Handle(context.Background(), in)
	if again[0].Event.ID() != outs[0].Event.ID() {
		t.Fatal("a redelivered job.created must give a job.finished with the same id")
	}
}

func TestProcessorFailsJobsOverLimits(t *testing.T) {
	var slept time.Duration
	p := newProcessor(&slept)
	for _, j := range []job.Job{created(t, 5000, 1), created(t, 1, 2<<20)} {
		in, _ := job.NewEvent(job.TypeCreated, "/r", j.ID.String(), j)
		outs, err := p.Handle(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		failed, _ := job.DecodeJob(outs[0].Event)
		if outs[0].Event.Type() != job.TypeFailed || failed.Status != job.StatusFail || failed.Error == "" {
			t.Fatalf("want job.failed, got %v %+v", outs[0].Event.Type(), failed)
		}
	}
	if slept != 0 {
		t.Fatal("a failed job must not sleep")
	}
}

func TestProcessorRejectsBadInput(t *testing.T) {
	var slept time.Duration
	p := newProcessor(&slept)
	j := created(t, 1, 1)
	wrongType, _ := job.NewEvent(job.TypeFinished, "/r", "1", j)
	badJSON, _ := job.NewEvent(job.TypeCreated, "/r", "2", j)
	_ = badJSON.SetData("application/json", []byte(`{"id":"x"}`))
	noID, _ := job.NewEvent(job.TypeCreated, "/r", "3", j)
	_ = noID.SetData("application/json", []byte(`{"create_date":"2026-11-23T17:00:00Z"}`))
	for name, e := range map[string]event.Event{"wrong type": wrongType, "bad json": badJSON, "no id": noID} {
		outs, err := p.Handle(context.Background(), e)
		if fn.StatusOf(err) != 400 || outs != nil {
			t.Errorf("%s: err = %v outs = %v, want a 400 and nothing emitted", name, err, outs)
		}
	}
	if slept != 0 {
		t.Fatal("bad input must not be worked on")
	}
}

func TestProcessorInterruptedIsRetried(t *testing.T) {
	p := &Processor{Config: Config{MaxSleep: time.Second, MaxDataSize: 10}, Sleep: delivery.Sleep, Now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	j := created(t, 500, 1)
	in, _ := job.NewEvent(job.TypeCreated, "/r", j.ID.String(), j)
	_, err := p.Handle(ctx, in)
	if err == nil || fn.StatusOf(err) != 500 || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a retryable 500 wrapping context.Canceled", err)
	}
}

// TestProcessorBatchWorksConcurrently: the jobs of a batched delivery are
// worked on at once (their sleeps overlap) and every outcome is returned,
// in the batch's order; one invalid event fails the batch alone, with its
// reason and status and no output, so that the engine delivers the batch's
// events one by one and dead-letters that one only.
func TestProcessorBatchWorksConcurrently(t *testing.T) {
	p := &Processor{Config: Config{MaxSleep: time.Minute, MaxDataSize: 1 << 20, Source: "/p"}, Sleep: delivery.Sleep, Now: time.Now}
	const n, sleep = 50, 200 // one after another: 10 s
	in := make([]event.Event, n)
	for i := range in {
		j := created(t, sleep, 10)
		in[i], _ = job.NewEvent(job.TypeCreated, "/r", j.ID.String(), j)
	}
	start := time.Now()
	outs, err := p.HandleBatch(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a batch of %d jobs of %d ms took %s: the sleeps did not overlap", n, sleep, took)
	}
	if len(outs) != n {
		t.Fatalf("%d outputs for %d jobs", len(outs), n)
	}
	for i, o := range outs {
		done, err := job.DecodeJob(o.Event)
		if err != nil || o.Event.Type() != job.TypeFinished || done.ID.String() != in[i].ID() {
			t.Fatalf("output %d: %s %+v %v, want job.finished of %s", i, o.Event.Type(), done, err, in[i].ID())
		}
	}

	bad, _ := job.NewEvent(job.TypeCreated, "/r", "bad", created(t, 1, 1))
	_ = bad.SetData("application/json", []byte(`{"id":"x"}`))
	in[7] = bad
	start = time.Now()
	outs, err = p.HandleBatch(context.Background(), in)
	if fn.StatusOf(err) != 400 || outs != nil || !strings.Contains(err.Error(), "event 7 (id bad)") {
		t.Fatalf("batch with an invalid event: %v, %d outputs; want a 400 naming event 7 and none", err, len(outs))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a failed batch took %s", took)
	}
}
