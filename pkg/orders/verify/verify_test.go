package verify_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/delivery"
	"github.com/jobflow/jobflow/pkg/orders/participant"
	"github.com/jobflow/jobflow/pkg/orders/payment"
	"github.com/jobflow/jobflow/pkg/orders/saga"
	"github.com/jobflow/jobflow/pkg/orders/stock"
	"github.com/jobflow/jobflow/pkg/orders/verify"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

func db(t *testing.T, schema string) (string, *pgxpool.Pool) {
	t.Helper()
	url := testenv.PostgresDB(t)
	d, err := pgdb.Open(context.Background(), "test", url, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return url, d.Pool
}

func exec(t *testing.T, p *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := p.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestFindsEachViolation: a consistent state passes; each kind of
// corruption is reported.
func TestFindsEachViolation(t *testing.T) {
	ctx := context.Background()
	var o verify.Options
	var pay, stk, del, sg *pgxpool.Pool
	o.Payment, pay = db(t, participant.Schema+payment.Schema)
	o.Stock, stk = db(t, participant.Schema+stock.Schema)
	o.Delivery, del = db(t, participant.Schema+delivery.Schema)
	o.Saga, sg = db(t, saga.Schema)
	a, b := uuid.New(), uuid.New()
	// Order a confirmed (300 cents, 2 items, courier 1), order b rejected (all released).
	exec(t, sg, `INSERT INTO orders (order_id, user_id, amount_cents, placed_at, deadline, status, decided_at) VALUES
		($1, 7, 300, now(), now(), 'confirmed', now()), ($2, 7, 100, now(), now(), 'rejected', now())`, a, b)
	exec(t, pay, `INSERT INTO deposits VALUES (7, 'k', 1000, now())`)
	exec(t, pay, `INSERT INTO accounts VALUES (7, 700)`)
	exec(t, pay, `INSERT INTO reserves (order_id, user_id, amount_cents, state) VALUES ($1, 7, 300, 'charged'), ($2, 7, 100, 'released')`, a, b)
	exec(t, stk, `INSERT INTO products (id, name, price_cents, in_stock, received) VALUES (1, 'mug', 150, 8, 10)`)
	exec(t, stk, `INSERT INTO reserves (order_id, product_id, number, state) VALUES ($1, 1, 2, 'shipped'), ($2, 1, 1, 'released')`, a, b)
	exec(t, del, `INSERT INTO couriers (id, name) VALUES (1, 'kim')`)
	exec(t, del, `INSERT INTO bookings VALUES (1, '2030-01-01T10:00:00Z', $1)`, a)
	exec(t, del, `INSERT INTO reserves (order_id, courier_id, slot, state) VALUES ($1, 1, '2030-01-01T10:00:00Z', 'assigned'), ($2, NULL, NULL, 'refused')`, a, b)
	var out bytes.Buffer
	rep, err := verify.Check(ctx, o, &out)
	if err != nil || !rep.OK() || rep.Orders != 2 || rep.Confirmed != 1 {
		t.Fatalf("consistent state: %+v %v\n%s", rep, err, out.String())
	}

	// Corrupt each service in turn.
	c := uuid.New()
	exec(t, pay, `UPDATE accounts SET balance_cents = 800`)                                                                        // money from nowhere
	exec(t, stk, `UPDATE products SET in_stock = 7`)                                                                               // an item lost
	exec(t, del, `INSERT INTO reserves (order_id, courier_id, slot, state) VALUES ($1, 1, '2030-01-01T10:00:00Z', 'reserved')`, c) // courier twice
	exec(t, sg, `INSERT INTO orders (order_id, user_id, amount_cents, placed_at, deadline) VALUES ($1, 7, 5, now(), now())`, c)    // never decided
	exec(t, pay, `UPDATE reserves SET state = 'reserved' WHERE order_id = $1`, b)                                                  // open after rejection
	out.Reset()
	rep, err = verify.Check(ctx, o, &out)
	if err != nil || rep.OK() {
		t.Fatalf("corrupt state passed: %+v %v", rep, err)
	}
	for _, want := range []string{"money not conserved", "stock not conserved", "courier 1 booked 2 times", "still pending", "payment reserve still open"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if err := verify.Run(ctx, []string{"--payment-url", o.Payment, "--stock-url", o.Stock, "--delivery-url", o.Delivery, "--saga-url", o.Saga,
		"--orders-url", "-", "--notify-url", "-"}, &out); err != verify.ErrViolation {
		t.Fatalf("Run: %v, want ErrViolation", err)
	}
}

// TestServicesThatNeverRanHaveNothingToCheck: on a fresh `jobflow up` no
// order was placed and the participants, scaled to zero, never made their
// tables; `jobflow verify all` must pass there, not fail to check.
func TestServicesThatNeverRanHaveNothingToCheck(t *testing.T) {
	o := verify.Options{Payment: testenv.PostgresDB(t), Stock: testenv.PostgresDB(t), Delivery: testenv.PostgresDB(t),
		Saga: testenv.PostgresDB(t), Orders: testenv.PostgresDB(t), Notify: testenv.PostgresDB(t)}
	var out bytes.Buffer
	rep, err := verify.Check(context.Background(), o, &out)
	if err != nil || !rep.OK() || rep.Orders != 0 {
		t.Fatalf("empty databases: %+v, %v\n%s", rep, err, out.String())
	}
}
