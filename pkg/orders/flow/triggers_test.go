package flow_test

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/internal/trigger"
	"github.com/jobflow/jobflow/pkg/orders/events"
)

// TestTriggersTakeWhatTheirServiceNeeds: the repository's orders Triggers,
// evaluated by the engine's filters (Knative's packages), take exactly the
// events their service handles.
func TestTriggersTakeWhatTheirServiceNeeds(t *testing.T) {
	topo, err := manifest.Load(testenv.RootDir(t))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(typ, source string) *event.Event {
		e := event.New()
		e.SetType(typ)
		e.SetSource(source)
		e.SetID("1")
		return &e
	}
	const sweep = "/apis/v1/namespaces/jobflow/pingsources/orders-sweep"
	all := map[string]*event.Event{
		"placed":          ev(events.TypePlaced, events.SourceOrders),
		"validated":       ev(events.TypeValidated, events.SourcePayment),
		"confirmed":       ev(events.TypeConfirmed, events.SourceSaga),
		"rejected":        ev(events.TypeRejected, events.SourceSaga),
		"forged decision": ev(events.TypeConfirmed, "/me"),
		"settled":         ev(events.TypeSettled, events.SourceStock),
		"sweep ping":      ev("dev.knative.sources.ping", sweep),
		"other ping":      ev("dev.knative.sources.ping", "/apis/v1/namespaces/jobflow/pingsources/heartbeat"),
		"user":            ev(events.TypeUser, events.SourceUsers),
	}
	participant := map[string]bool{"placed": true, "confirmed": true, "rejected": true, "forged decision": true}
	want := map[string]map[string]bool{
		"orders-payment": participant, "orders-stock": participant, "orders-delivery": participant,
		"orders-saga": {"placed": true, "validated": true, "confirmed": true, "rejected": true, "sweep ping": true},
	}
	for name, takes := range want {
		var tr *manifest.Trigger
		for i := range topo.Triggers {
			if topo.Triggers[i].Name == name {
				tr = &topo.Triggers[i]
			}
		}
		if tr == nil || tr.Spec.Broker != "orders" {
			t.Fatalf("no trigger %s on the orders broker", name)
		}
		f := trigger.NewFilter(nil, tr.Spec.Filters)
		for what, e := range all {
			if got := f.Match(context.Background(), e); got != takes[what] {
				t.Errorf("%s takes %s: %v, want %v", name, what, got, takes[what])
			}
		}
		f.Close()
	}
}
