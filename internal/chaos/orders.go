package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Orders is the order saga's load and accounting: customers with
// deposits place orders (POST /orders with an Idempotency-Key, resent
// with the same key until accepted: a resend is the same order).
type Orders struct {
	URL              map[string]string // users, orders, payment, stock, delivery
	Prefix           string
	c                *client
	next             atomic.Int64
	product, price   int64
	customers        []customer
	mu               sync.Mutex
	accepted         map[string]int64 // order id -> user
	deposits         map[int64]int64  // user -> accepted deposits, cents
	refused, retried int
	refusals         *refusals
}

type customer struct {
	id    int64
	token string
}

// NewOrders is the orders load on the functions at url.
func NewOrders(url map[string]string, prefix string, giveUp time.Duration) *Orders {
	return &Orders{URL: url, Prefix: prefix, c: newClient(giveUp), accepted: map[string]int64{}, deposits: map[int64]int64{}}
}

// register makes a user and logs in; its id and token.
func (o *Orders) register(ctx context.Context, name string) (customer, error) {
	body := mustJSON(map[string]string{"username": name, "password": name + "-secret", "first_name": "Chaos",
		"last_name": name, "email": name + "@example.com"})
	out := o.c.do(ctx, "POST", o.URL["users"]+"/users", body, nil, is2xx)
	if out.status != 201 && out.status != 409 { // 409: a resend whose first attempt went through
		return customer{}, fmt.Errorf("register %s: status %d %s", name, out.status, out.body)
	}
	out = o.c.do(ctx, "POST", o.URL["users"]+"/login", mustJSON(map[string]string{"username": name, "password": name + "-secret"}), nil, is2xx)
	var l struct {
		Token string `json:"token"`
		User  struct {
			ID int64 `json:"user_id"`
		} `json:"user"`
	}
	if out.status != 200 || json.Unmarshal(out.body, &l) != nil || l.Token == "" {
		return customer{}, fmt.Errorf("login %s: status %d %s", name, out.status, out.body)
	}
	return customer{id: l.User.ID, token: l.Token}, nil
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// Setup makes the admin, a product, couriers and n customers with a
// deposit each.
func (o *Orders) Setup(ctx context.Context, n, couriers int) error {
	admin, err := o.register(ctx, "admin")
	if err != nil {
		return err
	}
	o.price = 1250
	out := o.c.do(ctx, "POST", o.URL["stock"]+"/products", mustJSON(map[string]any{"name": "Teapot", "price_cents": o.price, "in_stock": 1000000}), bearer(admin.token), is2xx)
	var p struct {
		ID int64 `json:"id"`
	}
	if !is2xx(out.status) || json.Unmarshal(out.body, &p) != nil {
		return fmt.Errorf("product: status %d %s", out.status, out.body)
	}
	o.product = p.ID
	for i := range couriers {
		if out := o.c.do(ctx, "POST", o.URL["delivery"]+"/couriers", mustJSON(map[string]string{"name": fmt.Sprintf("courier-%d", i)}), bearer(admin.token), is2xx); !is2xx(out.status) {
			return fmt.Errorf("courier: status %d %s", out.status, out.body)
		}
	}
	for i := range n {
		c, err := o.register(ctx, fmt.Sprintf("customer%d", i))
		if err != nil {
			return err
		}
		o.customers = append(o.customers, c)
		o.deposit(ctx, c, 20*o.price)
	}
	return nil
}

// deposit pays cents into c's balance, resent with the same key until
// accepted (a resend deposits once).
func (o *Orders) deposit(ctx context.Context, c customer, cents int64) {
	hdr := bearer(c.token)
	hdr["Idempotency-Key"] = fmt.Sprintf("%s-dep-%d", o.Prefix, o.next.Add(1))
	out := o.c.do(ctx, "POST", o.URL["payment"]+"/balance/deposit", mustJSON(map[string]int64{"amount_cents": cents}), hdr, is2xx)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.note("deposit", out)
	if is2xx(out.status) {
		o.deposits[c.id] += cents
	}
}

func (o *Orders) note(what string, out outcome) {
	if out.attempts > 1 {
		o.retried++
	}
	if !is2xx(out.status) {
		o.refused++
		o.refusals.add(what, out)
	}
}

// Step is one request of the steady load: an order, now and then a
// deposit.
func (o *Orders) Step(ctx context.Context, rng *rand.Rand) {
	c := o.customers[rng.IntN(len(o.customers))]
	if rng.IntN(10) == 0 {
		o.deposit(ctx, c, 5*o.price)
		return
	}
	o.Place(ctx, c, 1+rng.Int64N(3))
}

// Place places an order of number items for c; its id ("" if refused).
func (o *Orders) Place(ctx context.Context, c customer, number int64) string {
	hdr := bearer(c.token)
	hdr["Idempotency-Key"] = fmt.Sprintf("%s-order-%d", o.Prefix, o.next.Add(1))
	body := mustJSON(map[string]int64{"product_id": o.product, "number": number, "unit_price_cents": o.price})
	out := o.c.do(ctx, "POST", o.URL["orders"]+"/orders", body, hdr, is2xx)
	var placed struct {
		ID string `json:"order_id"`
	}
	ok := out.status == 202 && json.Unmarshal(out.body, &placed) == nil && placed.ID != ""
	o.mu.Lock()
	defer o.mu.Unlock()
	o.note("order", out)
	if !ok {
		return ""
	}
	o.accepted[placed.ID] = c.id
	return placed.ID
}

// OrderDecided reports whether order id is decided in the orders service.
func OrderDecided(ctx context.Context, orders *pgxpool.Pool, id string) bool {
	var st string
	err := orders.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, id).Scan(&st)
	return err == nil && st != "pending"
}

// OrderTally is the orders' accounting.
type OrderTally struct {
	Accepted, Confirmed, Rejected, Refused, Retried int
	Lost                                            int // accepted, not in the orders service or never decided
	Deposited, DepositsLost, DepositsDoubled        int64
	Examples                                        []string
}

// Tally checks every accepted order (in the orders service, decided) and
// every accepted deposit (stored once, to the cent).
func (o *Orders) Tally(ctx context.Context, orders, payment *pgxpool.Pool) (OrderTally, error) {
	o.mu.Lock()
	t := OrderTally{Accepted: len(o.accepted), Refused: o.refused, Retried: o.retried}
	acc := make(map[string]int64, len(o.accepted))
	for id, u := range o.accepted {
		acc[id] = u
	}
	want := make(map[int64]int64, len(o.deposits))
	for u, c := range o.deposits {
		want[u] = c
		t.Deposited += c
	}
	o.mu.Unlock()
	status := map[string]string{}
	rows, err := orders.Query(ctx, `SELECT id::text, status FROM orders`)
	if err != nil {
		return t, fmt.Errorf("orders: %w", err)
	}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return t, fmt.Errorf("orders: %w", err)
		}
		status[id] = st
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("orders: %w", err)
	}
	for id := range acc {
		switch status[id] {
		case "confirmed":
			t.Confirmed++
		case "rejected":
			t.Rejected++
		default:
			t.Lost++
			if len(t.Examples) < 5 {
				t.Examples = append(t.Examples, fmt.Sprintf("order %s: accepted, status %q", id, status[id]))
			}
		}
	}
	got, err := pairs(ctx, payment, `SELECT user_id, sum(amount_cents)::bigint, count(*) FROM deposits GROUP BY user_id`)
	if err != nil {
		return t, fmt.Errorf("deposits: %w", err)
	}
	for u, w := range want {
		switch d := got[u][0] - w; {
		case d < 0:
			t.DepositsLost -= d
		case d > 0:
			t.DepositsDoubled += d
		}
	}
	return t, nil
}

// Settled reports whether every accepted order is decided.
func (o *Orders) Settled(ctx context.Context, orders, payment *pgxpool.Pool) bool {
	t, err := o.Tally(ctx, orders, payment)
	return err == nil && t.Lost == 0
}
