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

func TestStartNeedsItsDatabase(t *testing.T) {
	t.Setenv("JOBFLOW_COUNTERS_URL", "")
	if err := New().Start(context.Background(), nil); err == nil {
		t.Fatal("counter must refuse to start without JOBFLOW_COUNTERS_URL")
	}
}
