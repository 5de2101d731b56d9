package flow_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
	"github.com/jobflow/jobflow/pkg/orders/payment"
	"github.com/jobflow/jobflow/pkg/orders/stock"
)

// shop sets up a catalogue, couriers and balances through the functions'
// APIs: product 1 (plenty), product 2 (none in stock); `couriers`
// couriers; users with the given deposits (cents).
func shop(t *testing.T, c *cluster, couriers int, deposits map[int64]int64) (plenty, none stock.Product) {
	t.Helper()
	admin := orderstest.Token(t, 1, true)
	if code := api(t, "POST", c.url("stock")+"/products", admin, map[string]any{"name": "mug", "price_cents": 250, "in_stock": 1_000_000}, &plenty); code != 201 {
		t.Fatalf("create product: %d", code)
	}
	if code := api(t, "POST", c.url("stock")+"/products", admin, map[string]any{"name": "lamp", "price_cents": 900, "in_stock": 0}, &none); code != 201 {
		t.Fatalf("create product: %d", code)
	}
	for i := range couriers {
		if code := api(t, "POST", c.url("delivery")+"/couriers", admin, map[string]any{"name": "courier " + string(rune('A'+i%26))}, nil); code != 201 {
			t.Fatalf("create courier: %d", code)
		}
	}
	for user, cents := range deposits {
		if cents > 0 {
			if code := api(t, "POST", c.url("payment")+"/balance/deposit", orderstest.Token(t, user, false), map[string]any{"amount_cents": cents}, nil); code != 200 {
				t.Fatalf("deposit: %d", code)
			}
		}
	}
	return plenty, none
}

// placed is an order placed at placedAt (one instant for every order of a
// test: their delivery window is the same; the saga's deadline counts from it).
func placed(t *testing.T, placedAt time.Time, user, product, number, price int64) (events.Placed, event.Event) {
	p := events.Placed{OrderID: uuid.New(), UserID: user, ProductID: product, Number: number, UnitPriceCents: price,
		AmountCents: number * price, PlacedAt: placedAt, Deadline: time.Now().UTC().Add(time.Hour)}
	return p, orderstest.PlacedEvent(t, p)
}

func sagaStatus(t *testing.T, c *cluster) map[uuid.UUID][2]string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.dbs["saga"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), `SELECT order_id, status, array_to_string(reasons, '; ') FROM orders`)
	m := map[uuid.UUID][2]string{}
	var id uuid.UUID
	var st, reasons string
	if _, err := pgx.ForEachRow(rows, []any{&id, &st, &reasons}, func() error { m[id] = [2]string{st, reasons}; return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOrdersThroughTheBroker: orders placed into the orders Broker are
// validated by payment, stock and delivery in parallel and decided by the
// saga; each kind of failure rejects with its reason and compensates;
// resending every order and replaying the whole topic changes nothing.
func TestOrdersThroughTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the engine")
	}
	c := start(t, newConfig(t))
	plenty, none := shop(t, c, 10, map[int64]int64{2: 10_000, 3: 100})
	type want struct {
		status, reason string
	}
	cases := map[uuid.UUID]want{}
	var sent []event.Event
	client := &http.Client{Timeout: 30 * time.Second}
	placedAt := time.Now().UTC()
	add := func(w want, user, product, number, price int64) {
		p, e := placed(t, placedAt, user, product, number, price)
		cases[p.OrderID] = w
		sent = append(sent, e)
		if code := send(client, c.broker(), e); code != http.StatusAccepted {
			t.Fatalf("broker answered %d", code)
		}
	}
	for range 8 {
		add(want{"confirmed", ""}, 2, plenty.ID, 2, 250) // 8 × 500 of 10,000 cents
	}
	add(want{"rejected", "payment: insufficient funds"}, 3, plenty.ID, 1, 250)
	add(want{"rejected", "stock: out of stock"}, 2, none.ID, 1, 900)
	add(want{"rejected", "stock: unknown product"}, 2, 999, 1, 100)
	add(want{"rejected", "stock: price mismatch"}, 2, plenty.ID, 1, 249)

	c.quiet(t, len(cases), 2*time.Minute)
	got := sagaStatus(t, c)
	for id, w := range cases {
		if got[id][0] != w.status || !strings.Contains(got[id][1], w.reason) {
			t.Errorf("order %s: %v, want %s %q", id, got[id], w.status, w.reason)
		}
	}
	var b payment.Balance
	api(t, "GET", c.url("payment")+"/balance", orderstest.Token(t, 2, false), nil, &b)
	if b.ChargedCents != 4000 || b.BalanceCents != 6000 || b.ReservedCents != 0 {
		t.Fatalf("user 2 after the orders: %+v", b)
	}

	// Every order again, then the whole topic again: nothing changes.
	for _, e := range sent {
		if code := send(client, c.broker(), e); code != http.StatusAccepted {
			t.Fatalf("resend: %d", code)
		}
	}
	n := c.replay(t)
	t.Logf("replayed %d records of the orders topic", n)
	time.Sleep(10 * time.Second) // the replayed events go through every trigger
	rep := c.quiet(t, len(cases), 2*time.Minute)
	if rep.Orders != len(cases) || rep.Confirmed != 8 {
		t.Fatalf("after the replay: %+v", rep)
	}
	api(t, "GET", c.url("payment")+"/balance", orderstest.Token(t, 2, false), nil, &b)
	if b.ChargedCents != 4000 || b.BalanceCents != 6000 {
		t.Fatalf("user 2 after the replay: %+v", b)
	}
	var p stock.Product
	api(t, "GET", c.url("stock")+"/products/1", orderstest.Token(t, 2, false), nil, &p)
	if p.InStock != 1_000_000-16 {
		t.Fatalf("product after the replay: %+v", p)
	}
}
