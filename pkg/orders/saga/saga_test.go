package saga_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
	"github.com/jobflow/jobflow/pkg/orders/saga"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func startSaga(t *testing.T, deadline, republish string) *saga.Saga {
	t.Helper()
	t.Setenv("JOBFLOW_SAGA_URL", testenv.PostgresDB(t))
	t.Setenv("ORDERS_DEADLINE", deadline)
	t.Setenv("SAGA_REPUBLISH_AFTER", republish)
	s := saga.New()
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func validated(t *testing.T, order uuid.UUID, c events.Check, ok bool, reason string) event.Event {
	t.Helper()
	e, err := events.NewValidated(events.Validated{OrderID: order, Check: c, OK: ok, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ping(id string) event.Event {
	e := event.New()
	e.SetType(saga.PingType)
	e.SetSource("/apis/v1/namespaces/jobflow/pingsources/orders-sweep")
	e.SetID(id)
	return e
}

// handle sends e and returns the decisions emitted.
func handle(t *testing.T, s *saga.Saga, e event.Event) []events.Decided {
	t.Helper()
	outs, err := s.Handle(context.Background(), e)
	if err != nil {
		t.Fatalf("%s %s: %v", e.Type(), e.ID(), err)
	}
	var ds []events.Decided
	for _, o := range outs {
		var d events.Decided
		if err := events.Decode(o.Event, o.Event.Type(), &d); err != nil {
			t.Fatal(err)
		}
		if o.Event.ID() != events.DecidedID(d.OrderID) || o.Event.Extensions()[events.PartitionKey] != d.OrderID.String() {
			t.Fatalf("decision event %s", o.Event)
		}
		if (o.Event.Type() == events.TypeConfirmed) != (len(d.Reasons) == 0) {
			t.Fatalf("%s with reasons %v", o.Event.Type(), d.Reasons)
		}
		ds = append(ds, d)
	}
	return ds
}

func TestGather(t *testing.T) {
	s := startSaga(t, "1h", "1h")
	// All three ok: confirmed on the third answer, and only then.
	p := orderstest.Placed(1, 2, 3, 100)
	if ds := handle(t, s, orderstest.PlacedEvent(t, p)); len(ds) != 0 {
		t.Fatalf("decided on placed: %v", ds)
	}
	handle(t, s, validated(t, p.OrderID, events.CheckPayment, true, ""))
	handle(t, s, validated(t, p.OrderID, events.CheckStock, true, ""))
	last := validated(t, p.OrderID, events.CheckDelivery, true, "")
	ds := handle(t, s, last)
	if len(ds) != 1 || len(ds[0].Reasons) != 0 || ds[0].UserID != 1 || ds[0].AmountCents != 300 {
		t.Fatalf("confirmed: %+v", ds)
	}
	// A redelivery re-emits the same decision (its emit may have failed).
	if again := handle(t, s, last); len(again) != 1 || !again[0].DecidedAt.Equal(ds[0].DecidedAt) {
		t.Fatalf("redelivered: %+v", again)
	}

	// Answers before the order; the first failure rejects, later answers change nothing.
	q := orderstest.Placed(1, 2, 1, 100)
	handle(t, s, validated(t, q.OrderID, events.CheckStock, false, "stock: out of stock"))
	ds = handle(t, s, orderstest.PlacedEvent(t, q))
	if len(ds) != 1 || len(ds[0].Reasons) != 1 || ds[0].Reasons[0] != "stock: out of stock" {
		t.Fatalf("rejected: %+v", ds)
	}
	if ds := handle(t, s, validated(t, q.OrderID, events.CheckPayment, true, "")); len(ds) != 0 {
		t.Fatalf("decided twice: %+v", ds)
	}

	// Bad input: 400.
	bad := validated(t, q.OrderID, events.CheckStock, false, "x")
	bad.SetID("bad")
	bad.DataEncoded = []byte(`{"order_id":"` + q.OrderID.String() + `","check":"tax","ok":true}`)
	if _, err := s.Handle(context.Background(), bad); fn.StatusOf(err) != 400 {
		t.Fatalf("unknown check: %v", err)
	}
	forged, _ := events.New(events.TypeConfirmed, "/me", "decided/x", "k", events.Decided{OrderID: q.OrderID, UserID: 1, AmountCents: 1})
	if _, err := s.Handle(context.Background(), forged); fn.StatusOf(err) != 400 {
		t.Fatalf("a decision from elsewhere: %v", err)
	}
}

func TestDeadlineAndRepublish(t *testing.T) {
	s := startSaga(t, "300ms", "500ms")
	p := orderstest.Placed(1, 2, 1, 100)
	handle(t, s, orderstest.PlacedEvent(t, p))
	handle(t, s, validated(t, p.OrderID, events.CheckPayment, true, ""))
	if ds := handle(t, s, ping("1")); len(ds) != 0 {
		t.Fatalf("swept before the deadline: %+v", ds)
	}
	time.Sleep(400 * time.Millisecond)
	ds := handle(t, s, ping("2"))
	if len(ds) != 1 || !strings.Contains(ds[0].Reasons[0], "timeout: no answer from stock, delivery") {
		t.Fatalf("timeout: %+v", ds)
	}
	if ds := handle(t, s, validated(t, p.OrderID, events.CheckStock, true, "")); len(ds) != 0 {
		t.Fatalf("late answer decided again: %+v", ds)
	}
	// Not seen back through the broker: emitted again after SAGA_REPUBLISH_AFTER, until it is.
	time.Sleep(600 * time.Millisecond)
	if ds := handle(t, s, ping("3")); len(ds) != 1 || ds[0].OrderID != p.OrderID {
		t.Fatalf("republish: %+v", ds)
	}
	back, _ := events.NewDecided(events.Decided{OrderID: p.OrderID, UserID: 1, AmountCents: 100, Reasons: []string{"timeout"}})
	handle(t, s, back)
	if ds := handle(t, s, ping("4")); len(ds) != 0 {
		t.Fatalf("published decision emitted again: %+v", ds)
	}
}

// TestOneDecisionUnderRaces: answers, their duplicates and sweeps at the
// same time decide every order once: every decision emitted for an order
// (first deliveries, duplicates re-emitting, sweeps) is the same one.
func TestOneDecisionUnderRaces(t *testing.T) {
	s := startSaga(t, "300ms", "1h")
	var mu sync.Mutex
	decisions := map[uuid.UUID]map[string]bool{}
	record := func(outs []fn.Output) {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range outs {
			var d events.Decided
			if err := events.Decode(o.Event, o.Event.Type(), &d); err != nil {
				t.Error(err)
				continue
			}
			if decisions[d.OrderID] == nil {
				decisions[d.OrderID] = map[string]bool{}
			}
			decisions[d.OrderID][o.Event.Type()+" "+strings.Join(d.Reasons, ";")+" "+d.DecidedAt.String()] = true
		}
	}
	var orders []uuid.UUID
	var wg sync.WaitGroup
	for i := range 60 {
		p := orderstest.Placed(1, 2, 1, 100)
		orders = append(orders, p.OrderID)
		evs := []event.Event{orderstest.PlacedEvent(t, p)}
		for j, c := range events.Checks {
			if i%3 == 0 && j == 2 {
				continue // never answers: times out
			}
			evs = append(evs, validated(t, p.OrderID, c, i%5 != 0 || j != 1, "stock: out of stock"))
		}
		for _, e := range evs {
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs, err := s.Handle(context.Background(), e)
					if err != nil {
						t.Error(err)
					}
					record(outs)
				}()
			}
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for n := 0; ; n++ {
		outs, err := s.Handle(context.Background(), ping(uuid.NewString()))
		if err != nil {
			t.Fatal(err)
		}
		record(outs)
		select {
		case <-done:
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	time.Sleep(400 * time.Millisecond)
	outs, err := s.Handle(context.Background(), ping("last"))
	if err != nil {
		t.Fatal(err)
	}
	record(outs)
	for i, id := range orders {
		if len(decisions[id]) != 1 {
			t.Errorf("order %d: decisions %v, want exactly one", i, decisions[id])
		}
	}
}
