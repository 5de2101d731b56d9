package function

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/runtime/fn/fntest"
)

func TestShapeAndSafeStart(t *testing.T) { fntest.CloudEventFunction(t, New) }

func TestWithoutSinkTheFinishedJobIsTheReply(t *testing.T) {
	t.Setenv("K_SINK", "")
	f := New()
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	in := event.New()
	in.SetID("1")
	in.SetSource("/t")
	in.SetType("dev.jobflow.job.created")
	_ = in.SetData("application/json", []byte(`{"id":"6f1c2a52-7c1f-4f0e-9a57-6c0f3b9d2e41","create_date":"2026-11-23T17:00:00Z","sleep":0,"data_size":8}`))
	out, err := f.Handle(context.Background(), in)
	if err != nil || out == nil || out.Type() != "dev.jobflow.job.finished" {
		t.Fatalf("reply %v, err %v", out, err)
	}
}
