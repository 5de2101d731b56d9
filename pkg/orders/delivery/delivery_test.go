package delivery_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/delivery"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
)

// TestDelivery: couriers are admin-only; 3 couriers × 2 slots take 6 of 10
// concurrent orders, never a courier twice in a slot; a release frees a
// slot for the next order.
func TestDelivery(t *testing.T) {
	t.Setenv("DELIVERY_SLOTS", "2")
	f, url := orderstest.StartParticipant(t, delivery.Spec)
	h := f.Handle
	admin, user := orderstest.Token(t, 1, true), orderstest.Token(t, 2, false)
	if code, _ := orderstest.Call(t, h, "POST", "/couriers", user, `{"name":"x"}`, nil); code != 403 {
		t.Fatalf("non-admin: %d", code)
	}
	if code, _ := orderstest.Call(t, h, "GET", "/couriers", user, nil, nil); code != 403 {
		t.Fatalf("non-admin list: %d", code)
	}
	if code, _ := orderstest.Call(t, h, "POST", "/couriers", admin, `{"name":" "}`, nil); code != 400 {
		t.Fatalf("empty name: %d", code)
	}
	for _, n := range []string{"ann", "bob", "cid"} {
		if code, body := orderstest.Call(t, h, "POST", "/couriers", admin, `{"name":"`+n+`"}`, nil); code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []events.Placed
	refused := 0
	for range 10 {
		p := orderstest.Placed(2, 1, 1, 100)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, reply := orderstest.Send(t, h, orderstest.PlacedEvent(t, p))
			v := orderstest.Validated(t, reply)
			mu.Lock()
			defer mu.Unlock()
			if v.OK {
				ok = append(ok, p)
			} else if strings.Contains(v.Reason, "no courier") {
				refused++
			} else {
				t.Errorf("unexpected answer %+v", v)
			}
		}()
	}
	wg.Wait()
	if len(ok) != 6 || refused != 4 {
		t.Fatalf("%d booked, %d refused: want 6 and 4", len(ok), refused)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pairs, bookings int
	if err := conn.QueryRow(context.Background(),
		`SELECT count(DISTINCT (courier_id, slot)), count(*) FROM reserves WHERE state = 'reserved'`).Scan(&pairs, &bookings); err != nil || pairs != 6 || bookings != 6 {
		t.Fatalf("reserves: %d distinct courier-slots for %d reserves (%v)", pairs, bookings, err)
	}
	_, reply := orderstest.Send(t, h, orderstest.DecidedEvent(t, ok[0], "payment: no money"))
	if s := orderstest.Settled(t, reply); s.Action != events.ActionReleased || !strings.Contains(s.Detail, "freed") {
		t.Fatalf("release: %+v", s)
	}
	_, reply = orderstest.Send(t, h, orderstest.DecidedEvent(t, ok[1]))
	if s := orderstest.Settled(t, reply); s.Action != events.ActionAssigned {
		t.Fatalf("assign: %+v", s)
	}
	_, reply = orderstest.Send(t, h, orderstest.PlacedEvent(t, orderstest.Placed(2, 1, 1, 100)))
	if v := orderstest.Validated(t, reply); !v.OK {
		t.Fatalf("a freed slot is not taken: %+v", v)
	}
}
