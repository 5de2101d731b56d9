// Package fntest checks that a function project has the shape func's
// wrapper expects and fails safely before it is started; each function's
// own test calls it.
package fntest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// instancedCloudEvent is the instanced CloudEvent shape func's wrapper
// looks for, with the optional lifecycle methods it calls.
type instancedCloudEvent interface {
	Handle(ctx context.Context, e event.Event) (*event.Event, error)
	Start(ctx context.Context, cfg map[string]string) error
	Stop(ctx context.Context) error
	Ready(ctx context.Context) (bool, error)
	Alive(ctx context.Context) (bool, error)
}

// instancedHTTP is the instanced HTTP shape.
type instancedHTTP interface {
	Handle(w http.ResponseWriter, r *http.Request)
	Start(ctx context.Context, cfg map[string]string) error
	Ready(ctx context.Context) (bool, error)
}

// CloudEventFunction checks newFn() (a fresh instance each call): the
// instanced shape, no panic and not ready before Start, and that Start
// refuses to run without the settings in required (each set empty).
func CloudEventFunction[F any](t *testing.T, newFn func() F, required ...string) {
	t.Helper()
	f, ok := any(newFn()).(instancedCloudEvent)
	if !ok {
		t.Fatalf("%T does not have the instanced CloudEvent function methods", newFn())
	}
	e := event.New()
	e.SetID("1")
	e.SetSource("/fntest")
	e.SetType("dev.jobflow.test")
	if _, err := f.Handle(context.Background(), e); err == nil {
		t.Fatal("Handle before Start must fail")
	}
	if ok, _ := f.Ready(context.Background()); ok {
		t.Fatal("ready before Start")
	}
	refusesMissing(t, func() error { return any(newFn()).(instancedCloudEvent).Start(context.Background(), nil) }, required)
}

// HTTPFunction checks newFn(): the instanced HTTP shape, an answer with a
// reason (not a panic) before Start, and that Start refuses to run without
// the settings in required.
func HTTPFunction[F any](t *testing.T, newFn func() F, required ...string) {
	t.Helper()
	f, ok := any(newFn()).(instancedHTTP)
	if !ok {
		t.Fatalf("%T does not have the instanced HTTP function methods", newFn())
	}
	w := httptest.NewRecorder()
	f.Handle(w, httptest.NewRequest(http.MethodGet, "/no/such/path", nil))
	if w.Code < 400 || w.Body.Len() == 0 {
		t.Fatalf("before Start: status %d with body %q, want an error with a reason", w.Code, w.Body.String())
	}
	refusesMissing(t, func() error { return any(newFn()).(instancedHTTP).Start(context.Background(), nil) }, required)
}

func refusesMissing(t *testing.T, start func() error, required []string) {
	t.Helper()
	for _, k := range required {
		t.Setenv(k, "")
	}
	if len(required) > 0 {
		if err := start(); err == nil {
			t.Fatalf("Start must fail without %v", required)
		}
	}
}
