package function

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// The instanced CloudEvent shape func's wrapper looks for, with the
// optional lifecycle methods it calls.
type instancedCloudEvent interface {
	Handle(ctx context.Context, e event.Event) (*event.Event, error)
	Start(ctx context.Context, cfg map[string]string) error
	Stop(ctx context.Context) error
	Ready(ctx context.Context) (bool, error)
	Alive(ctx context.Context) (bool, error)
}

func TestNewHasTheFuncInstancedShape(t *testing.T) {
	var f any = New()
	if _, ok := f.(instancedCloudEvent); !ok {
		t.Fatalf("%T does not have the instanced CloudEvent function methods", f)
	}
}

func TestHandleBeforeStartIsUnavailableNotAPanic(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("/t")
	e.SetType("dev.jobflow.test")
	if _, err := New().Handle(context.Background(), e); err == nil {
		t.Fatal("Handle before Start must fail")
	}
	if ok, _ := New().Ready(context.Background()); ok {
		t.Fatal("not ready before Start")
	}
}

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
