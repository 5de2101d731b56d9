// Package verify is `jobflow verify orders`: the orders domain's
// invariants checked against the services' own databases. Money is
// conserved per user (deposits = balance + reserved + charged) and what
// was charged is what the confirmed orders cost; stock is conserved per
// product (received = in stock + reserved + shipped); no courier is booked
// twice for a slot; once the system is quiet every order is decided, in
// the saga and in the orders service alike; no reserve is left open for a
// decided order, a confirmed order's reserves are all completed and a
// rejected one's all released; there is exactly one message per decided
// order.
package verify

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// ErrViolation is returned when an invariant does not hold (exit status 1).
var ErrViolation = errors.New("orders invariants violated")

// Options of a check: each service's database (an empty Orders or Notify
// leaves that service's checks out).
type Options struct {
	Payment, Stock, Delivery, Saga, Orders, Notify string
	Wait                                           time.Duration // retry until the invariants hold or this long has passed
	Interval                                       time.Duration // between checks while waiting
	Limit                                          int           // violations printed (0: all)
}

// Report is what a check found.
type Report struct {
	Orders, Confirmed, Rejected, Pending int
	Users, Products, Bookings            int
	Violations                           []string
}

// OK reports whether every invariant holds.
func (r Report) OK() bool { return len(r.Violations) == 0 }

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Run is `jobflow verify orders [flags]`: the databases default to the
// ones `jobflow up` makes on the PostgreSQL server of --postgres-url.
func Run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("verify orders", flag.ContinueOnError)
	fs.SetOutput(out)
	base := os.Getenv("JOBFLOW_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"
	}
	fs.StringVar(&base, "postgres-url", base, "PostgreSQL server of the databases not given one by one ($JOBFLOW_POSTGRES_URL)")
	var o Options
	urls := map[string]*string{"payment": &o.Payment, "stock": &o.Stock, "delivery": &o.Delivery, "saga": &o.Saga, "orders": &o.Orders, "notify": &o.Notify}
	for name, p := range urls {
		fs.StringVar(p, name+"-url", os.Getenv("JOBFLOW_"+strings.ToUpper(name)+"_URL"), "PostgreSQL URL of the "+name+" database (default: database "+name+" on --postgres-url; \"-\": leave its checks out)")
	}
	fs.DurationVar(&o.Wait, "wait", 0, "retry until the invariants hold or this long has passed (0: check once)")
	fs.IntVar(&o.Limit, "limit", 20, "violations to print (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("verify orders: unexpected arguments %v", fs.Args())
	}
	for name, p := range urls {
		switch *p {
		case "":
			*p = pgdb.WithDatabase(base, name)
		case "-":
			*p = ""
		}
	}
	rep, err := Check(ctx, o, out)
	if err != nil {
		return err
	}
	if !rep.OK() {
		return ErrViolation
	}
	return nil
}

// Check runs the checks (retrying while o.Wait allows) and prints the report.
func Check(ctx context.Context, o Options, out io.Writer) (Report, error) {
	if o.Payment == "" || o.Stock == "" || o.Delivery == "" || o.Saga == "" {
		return Report{}, errors.New("verify orders: the payment, stock, delivery and saga databases are required")
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	deadline := time.Now().Add(o.Wait)
	for {
		rep, err := Once(ctx, o)
		if err == nil && (rep.OK() || time.Now().After(deadline)) {
			printReport(out, rep, o.Limit)
			return rep, nil
		}
		if err != nil && time.Now().After(deadline) {
			return rep, err
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(o.Interval):
		}
	}
}

func printReport(out io.Writer, r Report, limit int) {
	fmt.Fprintf(out, "orders: %d (%d confirmed, %d rejected, %d pending); users %d, products %d, courier bookings %d\n",
		r.Orders, r.Confirmed, r.Rejected, r.Pending, r.Users, r.Products, r.Bookings)
	for i, v := range r.Violations {
		if limit > 0 && i == limit {
			fmt.Fprintf(out, "... and %d more\n", len(r.Violations)-limit)
			break
		}
		fmt.Fprintln(out, "VIOLATION:", v)
	}
	if r.OK() {
		fmt.Fprintln(out, "every invariant holds")
	}
}

// decision of an order in the saga.
type decision struct {
	user, amount int64
	status       string
}

// reserve of an order in a participant.
type reserve struct {
	state  string
	user   int64 // payment
	amount int64 // payment: cents; stock: items
}

// Once checks every invariant once.
func Once(ctx context.Context, o Options) (Report, error) {
	c := &checker{dbs: map[string]*pgx.Conn{}}
	defer func() {
		for _, conn := range c.dbs {
			_ = conn.Close(context.Background())
		}
	}()
	for name, url := range map[string]string{"payment": o.Payment, "stock": o.Stock, "delivery": o.Delivery, "saga": o.Saga, "orders": o.Orders, "notify": o.Notify} {
		if url == "" {
			continue
		}
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return c.r, fmt.Errorf("%s database: %w", name, err)
		}
		c.dbs[name] = conn
	}
	for _, check := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"saga", c.decisions}, {"payment", c.money}, {"stock", c.stock}, {"delivery", c.couriers},
		{"reserves", c.reservesAgainstDecisions}, {"orders", c.ordersAgree}, {"notify", c.messages},
	} {
		if err := check.run(ctx); err != nil {
			return c.r, fmt.Errorf("%s: %w", check.name, err)
		}
	}
	sort.Strings(c.r.Violations)
	return c.r, nil
}

// checker is one pass over the databases: what it read and found.
type checker struct {
	dbs                       map[string]*pgx.Conn
	r                         Report
	saga                      map[uuid.UUID]decision
	payment, stockR, delivery map[uuid.UUID]reserve
}

// decisions reads the saga's orders: every one decided.
func (c *checker) decisions(ctx context.Context) error {
	c.saga = map[uuid.UUID]decision{}
	r := &c.r
	err := each(ctx, c.dbs["saga"], `SELECT order_id, user_id, amount_cents, status FROM orders`, func(row pgx.CollectableRow) error {
		var id uuid.UUID
		var d decision
		if err := row.Scan(&id, &d.user, &d.amount, &d.status); err != nil {
			return err
		}
		c.saga[id] = d
		switch d.status {
		case "confirmed":
			r.Confirmed++
		case "rejected":
			r.Rejected++
		default:
			r.Pending++
			r.violate("order %s is still pending in the saga", id)
		}
		return nil
	})
	r.Orders = len(c.saga)
	return err
}

// money: every user's deposits are their balance, reserves and charges;
// what was charged is what the confirmed orders cost.
func (c *checker) money(ctx context.Context) error {
	r := &c.r
	if err := each(ctx, c.dbs["payment"], `
SELECT u.user_id,
       coalesce((SELECT sum(amount_cents) FROM deposits d WHERE d.user_id = u.user_id), 0),
       coalesce((SELECT balance_cents FROM accounts a WHERE a.user_id = u.user_id), 0),
       coalesce((SELECT sum(amount_cents) FROM reserves s WHERE s.user_id = u.user_id AND state = 'reserved'), 0),
       coalesce((SELECT sum(amount_cents) FROM reserves s WHERE s.user_id = u.user_id AND state = 'charged'), 0)
FROM (SELECT user_id FROM accounts UNION SELECT user_id FROM deposits UNION SELECT user_id FROM reserves) u`, func(row pgx.CollectableRow) error {
		var user, dep, bal, res, chg int64
		if err := row.Scan(&user, &dep, &bal, &res, &chg); err != nil {
			return err
		}
		r.Users++
		if dep != bal+res+chg || bal < 0 {
			r.violate("user %d: money not conserved: deposits %d ≠ balance %d + reserved %d + charged %d", user, dep, bal, res, chg)
		}
		return nil
	}); err != nil {
		return err
	}
	var err error
	if c.payment, err = reserves(ctx, c.dbs["payment"], `SELECT order_id, state, user_id, amount_cents FROM reserves`); err != nil {
		return err
	}
	charged, confirmedCost := map[int64]int64{}, map[int64]int64{}
	for id, res := range c.payment {
		if res.state == "charged" {
			charged[res.user] += res.amount
		}
		if d, ok := c.saga[id]; ok && res.state == "charged" && (d.amount != res.amount || d.user != res.user) {
			r.violate("order %s: charged %d cents to user %d, the order is %d cents of user %d", id, res.amount, res.user, d.amount, d.user)
		}
	}
	for _, d := range c.saga {
		if d.status == "confirmed" {
			confirmedCost[d.user] += d.amount
		}
	}
	for _, u := range union(charged, confirmedCost) {
		if charged[u] != confirmedCost[u] {
			r.violate("user %d: charged %d cents, confirmed orders cost %d", u, charged[u], confirmedCost[u])
		}
	}
	return nil
}

// stock: every product's received items are in stock, reserved or shipped.
func (c *checker) stock(ctx context.Context) error {
	r := &c.r
	if err := each(ctx, c.dbs["stock"], `
SELECT p.id, p.received, p.in_stock,
       coalesce((SELECT sum(number) FROM reserves s WHERE s.product_id = p.id AND state = 'reserved'), 0),
       coalesce((SELECT sum(number) FROM reserves s WHERE s.product_id = p.id AND state = 'shipped'), 0)
FROM products p`, func(row pgx.CollectableRow) error {
		var id, received, inStock, reserved, shipped int64
		if err := row.Scan(&id, &received, &inStock, &reserved, &shipped); err != nil {
			return err
		}
		r.Products++
		if received != inStock+reserved+shipped || inStock < 0 {
			r.violate("product %d: stock not conserved: received %d ≠ in stock %d + reserved %d + shipped %d", id, received, inStock, reserved, shipped)
		}
		return nil
	}); err != nil {
		return err
	}
	var err error
	c.stockR, err = reserves(ctx, c.dbs["stock"], `SELECT order_id, state, 0, number FROM reserves`)
	return err
}

// couriers: no slot booked twice, a booking for every open reserve and
// none without one.
func (c *checker) couriers(ctx context.Context) error {
	r := &c.r
	if err := each(ctx, c.dbs["delivery"], `
SELECT courier_id, slot, count(*) FROM reserves WHERE state IN ('reserved', 'assigned')
GROUP BY courier_id, slot HAVING count(*) > 1`, func(row pgx.CollectableRow) error {
		var courier, n int64
		var slot time.Time
		if err := row.Scan(&courier, &slot, &n); err != nil {
			return err
		}
		r.violate("courier %d booked %d times for the slot %s", courier, n, slot.UTC().Format(time.RFC3339))
		return nil
	}); err != nil {
		return err
	}
	if err := each(ctx, c.dbs["delivery"], `
SELECT r.order_id, r.state, b.order_id IS NOT NULL FROM reserves r
LEFT JOIN bookings b ON b.order_id = r.order_id AND b.courier_id = r.courier_id AND b.slot = r.slot
WHERE (r.state IN ('reserved', 'assigned')) <> (b.order_id IS NOT NULL)
UNION ALL
SELECT b.order_id, 'booking without a reserve', true FROM bookings b
WHERE NOT EXISTS (SELECT 1 FROM reserves r WHERE r.order_id = b.order_id AND r.state IN ('reserved', 'assigned'))`, func(row pgx.CollectableRow) error {
		var id uuid.UUID
		var state string
		var booked bool
		if err := row.Scan(&id, &state, &booked); err != nil {
			return err
		}
		r.violate("order %s: delivery reserve %s, booking held: %v", id, state, booked)
		return nil
	}); err != nil {
		return err
	}
	if err := each(ctx, c.dbs["delivery"], `SELECT count(*) FROM bookings`, func(row pgx.CollectableRow) error {
		return row.Scan(&r.Bookings)
	}); err != nil {
		return err
	}
	var err error
	c.delivery, err = reserves(ctx, c.dbs["delivery"], `SELECT order_id, state, 0, 0 FROM reserves`)
	return err
}

// reservesAgainstDecisions: each order's reserves agree with its decision.
func (c *checker) reservesAgainstDecisions(context.Context) error {
	done := map[string]string{"payment": "charged", "stock": "shipped", "delivery": "assigned"}
	for check, rs := range map[string]map[uuid.UUID]reserve{"payment": c.payment, "stock": c.stockR, "delivery": c.delivery} {
		for id, res := range rs {
			d, ok := c.saga[id]
			switch {
			case !ok:
				c.r.violate("order %s: a %s reserve (%s) for an order the saga never saw", id, check, res.state)
			case d.status != "pending" && res.state == "reserved":
				c.r.violate("order %s: %s reserve still open, the order is %s", id, check, d.status)
			case d.status == "rejected" && res.state == done[check]:
				c.r.violate("order %s: rejected but %s %s", id, check, res.state)
			}
		}
		for id, d := range c.saga {
			if d.status == "confirmed" && rs[id].state != done[check] {
				c.r.violate("order %s: confirmed but its %s reserve is %q, want %s", id, check, rs[id].state, done[check])
			}
		}
	}
	return nil
}

// ordersAgree: the orders service agrees with the saga.
func (c *checker) ordersAgree(ctx context.Context) error {
	conn := c.dbs["orders"]
	if conn == nil {
		return nil
	}
	seen := map[uuid.UUID]bool{}
	if err := each(ctx, conn, `SELECT id, status FROM orders`, func(row pgx.CollectableRow) error {
		var id uuid.UUID
		var status string
		if err := row.Scan(&id, &status); err != nil {
			return err
		}
		seen[id] = true
		d, ok := c.saga[id]
		switch {
		case !ok:
			c.r.violate("order %s (%s in the orders service) never reached the saga", id, status)
		case status != d.status:
			c.r.violate("order %s: %s in the orders service, %s in the saga", id, status, d.status)
		}
		return nil
	}); err != nil {
		return err
	}
	for id := range c.saga {
		if !seen[id] {
			c.r.violate("order %s is in the saga but not in the orders service", id)
		}
	}
	return nil
}

// messages: exactly one message per decided order.
func (c *checker) messages(ctx context.Context) error {
	conn := c.dbs["notify"]
	if conn == nil {
		return nil
	}
	seen := map[uuid.UUID]bool{}
	if err := each(ctx, conn, `SELECT order_id, decision, text IS NOT NULL FROM notifications`, func(row pgx.CollectableRow) error {
		var id uuid.UUID
		var decision string
		var written bool
		if err := row.Scan(&id, &decision, &written); err != nil {
			return err
		}
		seen[id] = true
		d, ok := c.saga[id]
		switch {
		case !ok || d.status == "pending":
			c.r.violate("order %s: a message (%s) for an order not decided", id, decision)
		case decision != d.status:
			c.r.violate("order %s: the message says %s, the saga %s", id, decision, d.status)
		case !written:
			c.r.violate("order %s: its message is not written yet", id)
		}
		return nil
	}); err != nil {
		return err
	}
	for id, d := range c.saga {
		if d.status != "pending" && !seen[id] {
			c.r.violate("order %s is %s but has no message", id, d.status)
		}
	}
	return nil
}

// each calls fn for every row of sql. A table that does not exist reads
// as empty: a service that never ran (scaled to zero since its engine
// started, no order yet) has not made its tables, and has nothing to check.
func each(ctx context.Context, c *pgx.Conn, sql string, fn func(pgx.CollectableRow) error) error {
	rows, err := c.Query(ctx, sql)
	if err == nil {
		_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) { return struct{}{}, fn(row) })
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return nil
	}
	return err
}

func reserves(ctx context.Context, c *pgx.Conn, sql string) (map[uuid.UUID]reserve, error) {
	m := map[uuid.UUID]reserve{}
	err := each(ctx, c, sql, func(row pgx.CollectableRow) error {
		var id uuid.UUID
		var res reserve
		if err := row.Scan(&id, &res.state, &res.user, &res.amount); err != nil {
			return err
		}
		m[id] = res
		return nil
	})
	return m, err
}

func union(a, b map[int64]int64) []int64 {
	var keys []int64
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
