// Package orders is the orders service of the orders domain: it takes an
// order (POST /orders with an Idempotency-Key, or the CloudEvent
// dev.jobflow.order.requested), stores it pending and puts
// dev.jobflow.order.placed into the orders Broker (K_SINK); a Trigger
// brings back the participants' validations and settlements and the
// saga's decision, which become the order's status, reasons and steps;
// GET /orders and GET /orders/<id> answer the caller's own orders.
package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Schema of the orders database (idempotent). Steps are keyed by what
// they are (placed, validated/<check>, decided, settled/<check>), so a
// redelivered event adds nothing; the status moves only from pending.
const Schema = `
SELECT pg_advisory_xact_lock(7463019);
CREATE TABLE IF NOT EXISTS orders (
	id               uuid PRIMARY KEY,
	user_id          bigint NOT NULL,
	product_id       bigint NOT NULL,
	number           bigint NOT NULL CHECK (number > 0),
	unit_price_cents bigint NOT NULL CHECK (unit_price_cents > 0),
	amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
	status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
	reasons          text[] NOT NULL DEFAULT '{}',
	placed_at        timestamptz NOT NULL,
	deadline         timestamptz NOT NULL,
	decided_at       timestamptz
);
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, placed_at DESC);
CREATE TABLE IF NOT EXISTS order_steps (
	order_id uuid NOT NULL,
	step     text NOT NULL,
	ok       boolean NOT NULL,
	detail   text NOT NULL DEFAULT '',
	at       timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, step)
);`

// Statuses of an order.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusRejected  = "rejected"
)

// Order is a row of orders with its steps.
type Order struct {
	ID             uuid.UUID  `json:"order_id"`
	UserID         int64      `json:"user_id"`
	ProductID      int64      `json:"product_id"`
	Number         int64      `json:"number"`
	UnitPriceCents int64      `json:"unit_price_cents"`
	AmountCents    int64      `json:"amount_cents"`
	Status         string     `json:"status"`
	Reasons        []string   `json:"reasons"`
	PlacedAt       time.Time  `json:"placed_at"`
	Deadline       time.Time  `json:"deadline"`
	DecidedAt      *time.Time `json:"decided_at,omitempty"`
	Steps          []Step     `json:"steps,omitempty"`
}

// Step is one thing that happened to an order.
type Step struct {
	Step   string    `json:"step"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// Errors of the store.
var (
	ErrNoOrder  = errors.New("no such order")
	ErrConflict = errors.New("this Idempotency-Key was used for a different order")
	ErrNotYet   = errors.New("no such order")
)

// Store is the orders database.
type Store struct{ *pgdb.DB }

// Open connects to the orders database and applies the schema.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := pgdb.Open(ctx, "orders database", url, Schema)
	if err != nil {
		return nil, err
	}
	return &Store{db}, nil
}

// Place stores p pending (unless an order with its id exists), calls
// emit inside the transaction and commits: an order is stored only once
// its order.placed is in the broker. A resend of the same order emits
// the same event again (recipients dedupe it) and answers the stored
// order; the same id with a different request is ErrConflict.
func (s *Store) Place(ctx context.Context, p events.Placed, emit func(context.Context, events.Placed) error) (Order, error) {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return Order{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	tag, err := tx.Exec(ctx, `INSERT INTO orders (id, user_id, product_id, number, unit_price_cents, amount_cents, placed_at, deadline)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
		pgdb.UUID(p.OrderID), p.UserID, p.ProductID, p.Number, p.UnitPriceCents, p.AmountCents, p.PlacedAt, p.Deadline)
	if err != nil {
		return Order{}, fmt.Errorf("insert order: %w", err)
	}
	if tag.RowsAffected() == 0 {
		o, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, pgdb.UUID(p.OrderID)))
		if err != nil {
			return o, err
		}
		if o.UserID != p.UserID || o.ProductID != p.ProductID || o.Number != p.Number || o.UnitPriceCents != p.UnitPriceCents {
			return o, ErrConflict
		}
		p.PlacedAt, p.Deadline = o.PlacedAt, o.Deadline // the same event as the first time
		return o, emit(ctx, p)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO order_steps (order_id, step, ok, at) VALUES ($1, 'placed', true, $2)`,
		pgdb.UUID(p.OrderID), p.PlacedAt); err != nil {
		return Order{}, fmt.Errorf("insert step: %w", err)
	}
	if err := emit(ctx, p); err != nil {
		return Order{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Order{}, fmt.Errorf("commit order: %w", err)
	}
	return Order{ID: p.OrderID, UserID: p.UserID, ProductID: p.ProductID, Number: p.Number, UnitPriceCents: p.UnitPriceCents,
		AmountCents: p.AmountCents, Status: StatusPending, Reasons: []string{}, PlacedAt: p.PlacedAt, Deadline: p.Deadline}, nil
}

const orderColumns = `id, user_id, product_id, number, unit_price_cents, amount_cents, status, reasons, placed_at, deadline, decided_at`

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	err := row.Scan(&o.ID, &o.UserID, &o.ProductID, &o.Number, &o.UnitPriceCents, &o.AmountCents, &o.Status, &o.Reasons,
		&o.PlacedAt, &o.Deadline, &o.DecidedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNoOrder
	}
	return o, err
}

// Get returns user's order id with its steps; another user's order is
// ErrNoOrder, as an unknown one.
func (s *Store) Get(ctx context.Context, user int64, id uuid.UUID) (Order, error) {
	o, err := scanOrder(s.Pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1 AND user_id = $2`, pgdb.UUID(id), user))
	if err != nil {
		return o, err
	}
	rows, err := s.Pool.Query(ctx, `SELECT step, ok, detail, at FROM order_steps WHERE order_id = $1 ORDER BY at, step`, pgdb.UUID(id))
	if err != nil {
		return o, err
	}
	o.Steps, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Step, error) {
		var st Step
		return st, r.Scan(&st.Step, &st.OK, &st.Detail, &st.At)
	})
	return o, err
}

// List returns user's latest orders, newest first, at most limit.
func (s *Store) List(ctx context.Context, user int64, limit int) ([]Order, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE user_id = $1 ORDER BY placed_at DESC, id LIMIT $2`, user, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Order, error) { return scanOrder(r) })
}

// AddStep records a step (a redelivered one changes nothing).
func (s *Store) AddStep(ctx context.Context, order uuid.UUID, step string, ok bool, detail string) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO order_steps (order_id, step, ok, detail) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		pgdb.UUID(order), step, ok, detail)
	return err
}

// Decide records the saga's decision: the status moves from pending to
// status once (a later or redelivered decision changes nothing).
func (s *Store) Decide(ctx context.Context, d events.Decided, status string) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	reasons := d.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	tag, err := tx.Exec(ctx, `UPDATE orders SET status = $2, reasons = $3, decided_at = $4 WHERE id = $1 AND status = 'pending'`,
		pgdb.UUID(d.OrderID), status, reasons, d.DecidedAt)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)`, pgdb.UUID(d.OrderID)).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			// order.placed is emitted just before the order commits, so
			// a quick decision can overtake the commit: answer 503 and
			// the Trigger delivers it again.
			return fmt.Errorf("%w yet: %s decided before it was stored", ErrNotYet, d.OrderID)
		}
	}
	detail := status
	if len(reasons) > 0 {
		detail += ": " + joinReasons(reasons)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO order_steps (order_id, step, ok, detail, at) VALUES ($1, 'decided', $2, $3, $4) ON CONFLICT DO NOTHING`,
		pgdb.UUID(d.OrderID), status == StatusConfirmed, detail, d.DecidedAt); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}
