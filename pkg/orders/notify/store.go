// Package notify is the notification service of the orders domain: one
// message per decided order (dev.jobflow.order.confirmed or .rejected,
// from a Trigger), addressed to the customer by name. The customer comes
// from a customers table that notify materialises itself from the
// compacted orders-users topic of dev.jobflow.user.changed (a KafkaSource,
// ordered): a stream-table join. A decision whose customer has not
// arrived yet is kept waiting and written the moment the customer row
// arrives, so no message is lost or sent without a name.
package notify

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

// Schema of the notify database (idempotent). A notification is keyed by
// its order: one message per decided order, however often the decision
// is delivered; text is NULL while it waits for its customer.
const Schema = `
SELECT pg_advisory_xact_lock(7463020);
CREATE TABLE IF NOT EXISTS customers (
	user_id    bigint PRIMARY KEY,
	username   text NOT NULL,
	first_name text NOT NULL,
	last_name  text NOT NULL,
	email      text NOT NULL,
	phone      text NOT NULL,
	version    bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
	order_id     uuid PRIMARY KEY,
	user_id      bigint NOT NULL,
	decision     text NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
	amount_cents bigint NOT NULL,
	reasons      text[] NOT NULL,
	decided_at   timestamptz NOT NULL,
	email        text,
	text         text,
	written_at   timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, decided_at DESC);
CREATE INDEX IF NOT EXISTS notifications_waiting ON notifications (user_id) WHERE text IS NULL;`

// Notification is a message to a customer about one order.
type Notification struct {
	OrderID     uuid.UUID  `json:"order_id"`
	UserID      int64      `json:"user_id"`
	Decision    string     `json:"decision"`
	AmountCents int64      `json:"amount_cents"`
	Reasons     []string   `json:"reasons"`
	DecidedAt   time.Time  `json:"decided_at"`
	Email       *string    `json:"email,omitempty"`
	Text        *string    `json:"text,omitempty"` // nil while waiting for the customer
	WrittenAt   *time.Time `json:"written_at,omitempty"`
}

// Store is the notify database.
type Store struct{ *pgdb.DB }

// Open connects to the notify database and applies the schema.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := pgdb.Open(ctx, "notify database", url, Schema)
	if err != nil {
		return nil, err
	}
	return &Store{db}, nil
}

// Decided records a decision and writes its message if the customer is
// known; a redelivered decision changes nothing.
func (s *Store) Decided(ctx context.Context, d events.Decided, decision string) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := lockUser(ctx, tx, d.UserID); err != nil {
		return err
	}
	reasons := d.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	tag, err := tx.Exec(ctx, `INSERT INTO notifications (order_id, user_id, decision, amount_cents, reasons, decided_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING`,
		pgdb.UUID(d.OrderID), d.UserID, decision, d.AmountCents, reasons, d.DecidedAt)
	if err != nil {
		return fmt.Errorf("insert notification: %w", err)
	}
	if tag.RowsAffected() == 1 {
		if err := writeWaiting(ctx, tx, d.UserID); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Customer upserts a customer row (only a newer version replaces it) and
// writes the messages that were waiting for it.
func (s *Store) Customer(ctx context.Context, u events.UserChanged) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := lockUser(ctx, tx, u.UserID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO customers (user_id, username, first_name, last_name, email, phone, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (user_id) DO UPDATE SET username = EXCLUDED.username, first_name = EXCLUDED.first_name,
			last_name = EXCLUDED.last_name, email = EXCLUDED.email, phone = EXCLUDED.phone, version = EXCLUDED.version
		WHERE customers.version < EXCLUDED.version`,
		u.UserID, u.Username, u.FirstName, u.LastName, u.Email, u.Phone, u.Version); err != nil {
		return fmt.Errorf("upsert customer: %w", err)
	}
	if err := writeWaiting(ctx, tx, u.UserID); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// lockUser serialises a user's decisions and customer changes: without
// it a decision and its customer arriving at the same time would each
// miss the other (neither sees the other's uncommitted row) and the
// message would wait for the customer's next change.
func lockUser(ctx context.Context, tx pgx.Tx, user int64) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(1, ($1 % 2147483647)::int)`, user)
	return err
}

// writeWaiting writes the text of user's waiting messages if the customer
// is known (the join: the customer row as it is now).
func writeWaiting(ctx context.Context, tx pgx.Tx, user int64) error {
	var c events.UserChanged
	err := tx.QueryRow(ctx, `SELECT user_id, username, first_name, last_name, email FROM customers WHERE user_id = $1`, user).
		Scan(&c.UserID, &c.Username, &c.FirstName, &c.LastName, &c.Email)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // written when the customer arrives
	}
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT order_id, decision, amount_cents, reasons FROM notifications
		WHERE user_id = $1 AND text IS NULL FOR UPDATE`, user)
	if err != nil {
		return err
	}
	type waiting struct {
		id       uuid.UUID
		decision string
		amount   int64
		reasons  []string
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (waiting, error) {
		var w waiting
		return w, r.Scan(&w.id, &w.decision, &w.amount, &w.reasons)
	})
	if err != nil {
		return err
	}
	for _, w := range ws {
		text := Text(c, w.id, w.decision, w.amount, w.reasons)
		if _, err := tx.Exec(ctx, `UPDATE notifications SET text = $2, email = $3, written_at = now() WHERE order_id = $1`,
			pgdb.UUID(w.id), text, c.Email); err != nil {
			return err
		}
	}
	return nil
}

// List returns user's messages, newest first, at most limit.
func (s *Store) List(ctx context.Context, user int64, limit int) ([]Notification, error) {
	rows, err := s.Pool.Query(ctx, `SELECT order_id, user_id, decision, amount_cents, reasons, decided_at, email, text, written_at
		FROM notifications WHERE user_id = $1 ORDER BY decided_at DESC, order_id LIMIT $2`, user, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) {
		var n Notification
		return n, r.Scan(&n.OrderID, &n.UserID, &n.Decision, &n.AmountCents, &n.Reasons, &n.DecidedAt, &n.Email, &n.Text, &n.WrittenAt)
	})
}
