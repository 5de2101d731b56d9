// Package payment is the orders saga's payment participant: a balance per
// user, filled by the user's own deposits, and a reserve per order that
// holds the order's amount until the decision charges it (confirmed) or
// gives it back (rejected). Money is conserved per user: deposits =
// balance + reserved + charged (jobflow verify orders checks it).
package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/participant"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Schema of the payment database (besides participant.Schema).
const Schema = `
CREATE TABLE IF NOT EXISTS accounts (
	user_id       bigint PRIMARY KEY,
	balance_cents bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0)
);
CREATE TABLE IF NOT EXISTS deposits (
	user_id      bigint NOT NULL,
	key          text NOT NULL,
	amount_cents bigint NOT NULL CHECK (amount_cents > 0),
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, key)
);
CREATE TABLE IF NOT EXISTS reserves (
	order_id     uuid PRIMARY KEY,
	user_id      bigint NOT NULL,
	amount_cents bigint NOT NULL,
	state        text NOT NULL CHECK (state IN ('reserved', 'charged', 'released', 'refused')),
	reason       text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	settled_at   timestamptz
);
CREATE INDEX IF NOT EXISTS reserves_user ON reserves (user_id);`

// MaxBalanceCents bounds a balance, so no sum overflows.
const MaxBalanceCents = int64(1e15)

// Spec is the payment function.
var Spec = participant.Spec{
	Name: "payment", URLEnv: "JOBFLOW_PAYMENT_URL", Schema: Schema,
	Open: func(_ context.Context, db *pgdb.DB) (participant.Service, error) { return &Service{db: db}, nil },
}

// Service is the payment participant.
type Service struct{ db *pgdb.DB }

// Check is payment.
func (s *Service) Check() events.Check { return events.CheckPayment }

// Reserve takes the order's amount from the user's balance when it is there.
func (s *Service) Reserve(ctx context.Context, tx pgx.Tx, p events.Placed) (bool, string, error) {
	var balance int64
	err := tx.QueryRow(ctx, `SELECT balance_cents FROM accounts WHERE user_id = $1 FOR UPDATE`, p.UserID).Scan(&balance)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, "", err
	}
	if balance < p.AmountCents {
		reason := fmt.Sprintf("insufficient funds: balance %d cents, the order needs %d", balance, p.AmountCents)
		_, err := tx.Exec(ctx, `INSERT INTO reserves (order_id, user_id, amount_cents, state, reason) VALUES ($1, $2, $3, 'refused', $4)`,
			p.OrderID, p.UserID, p.AmountCents, reason)
		return false, reason, err
	}
	if _, err := tx.Exec(ctx, `UPDATE accounts SET balance_cents = balance_cents - $2 WHERE user_id = $1`, p.UserID, p.AmountCents); err != nil {
		return false, "", err
	}
	_, err = tx.Exec(ctx, `INSERT INTO reserves (order_id, user_id, amount_cents, state) VALUES ($1, $2, $3, 'reserved')`,
		p.OrderID, p.UserID, p.AmountCents)
	return err == nil, "", err
}

// Settle charges the reserve (confirmed) or gives the money back (rejected).
func (s *Service) Settle(ctx context.Context, tx pgx.Tx, d events.Decided, confirmed bool) (events.Action, string, error) {
	var user, amount int64
	var state string
	err := tx.QueryRow(ctx, `SELECT user_id, amount_cents, state FROM reserves WHERE order_id = $1 FOR UPDATE`, d.OrderID).Scan(&user, &amount, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.ActionNone, "nothing was reserved", nil
	}
	if err != nil {
		return "", "", err
	}
	if state != "reserved" {
		return events.ActionNone, "reserve was " + state, nil
	}
	if confirmed {
		_, err := tx.Exec(ctx, `UPDATE reserves SET state = 'charged', settled_at = now() WHERE order_id = $1`, d.OrderID)
		return events.ActionCharged, fmt.Sprintf("%d cents charged", amount), err
	}
	if _, err := tx.Exec(ctx, `UPDATE reserves SET state = 'released', settled_at = now() WHERE order_id = $1`, d.OrderID); err != nil {
		return "", "", err
	}
	_, err = tx.Exec(ctx, `UPDATE accounts SET balance_cents = balance_cents + $2 WHERE user_id = $1`, user, amount)
	return events.ActionReleased, fmt.Sprintf("%d cents given back", amount), err
}

// Routes: a user reads and fills only their own balance.
//
//	GET  /balance                                   -> 200 Balance
//	POST /balance/deposit {"amount_cents": 1000}    -> 200 Balance (Idempotency-Key header: a resend deposits once)
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /balance", s.balance)
	mux.HandleFunc("POST /balance/deposit", s.deposit)
	mux.HandleFunc("/", participant.NotFound("GET /balance, POST /balance/deposit"))
}

// Balance is a user's money.
type Balance struct {
	UserID         int64 `json:"user_id"`
	BalanceCents   int64 `json:"balance_cents"`   // available
	ReservedCents  int64 `json:"reserved_cents"`  // held for orders not yet decided
	ChargedCents   int64 `json:"charged_cents"`   // paid for confirmed orders
	DepositedCents int64 `json:"deposited_cents"` // every deposit
}

func (s *Service) read(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, user int64) (Balance, error) {
	b := Balance{UserID: user}
	err := q.QueryRow(ctx, `
SELECT coalesce((SELECT balance_cents FROM accounts WHERE user_id = $1), 0),
       coalesce((SELECT sum(amount_cents) FROM reserves WHERE user_id = $1 AND state = 'reserved'), 0),
       coalesce((SELECT sum(amount_cents) FROM reserves WHERE user_id = $1 AND state = 'charged'), 0),
       coalesce((SELECT sum(amount_cents) FROM deposits WHERE user_id = $1), 0)`, user).
		Scan(&b.BalanceCents, &b.ReservedCents, &b.ChargedCents, &b.DepositedCents)
	return b, err
}

func (s *Service) balance(w http.ResponseWriter, r *http.Request) {
	b, err := s.read(r.Context(), s.db.Pool, participant.Caller(r).UserID)
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, b)
}

// DepositRequest is the body of POST /balance/deposit.
type DepositRequest struct {
	AmountCents *int64 `json:"amount_cents"`
}

// MaxKeyLen bounds an Idempotency-Key.
const MaxKeyLen = 200

func (s *Service) deposit(w http.ResponseWriter, r *http.Request) {
	var q DepositRequest
	if err := participant.DecodeJSON(r, &q); err != nil {
		fn.WriteError(w, err)
		return
	}
	if q.AmountCents == nil || *q.AmountCents <= 0 || *q.AmountCents > events.MaxAmountCents {
		fn.WriteError(w, fn.Invalidf("amount_cents is required: 1 to %d", events.MaxAmountCents))
		return
	}
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if len(key) > MaxKeyLen || strings.ContainsRune(key, 0) {
		fn.WriteError(w, fn.Invalidf("Idempotency-Key: at most %d bytes, no NUL", MaxKeyLen))
		return
	}
	if key == "" {
		key = uuid.NewString()
	}
	user := participant.Caller(r).UserID
	b, err := s.depositTx(r.Context(), user, key, *q.AmountCents)
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, b)
}

func (s *Service) depositTx(ctx context.Context, user int64, key string, amount int64) (Balance, error) {
	tx, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return Balance{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	tag, err := tx.Exec(ctx, `INSERT INTO deposits (user_id, key, amount_cents) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, user, key, amount)
	if err != nil {
		return Balance{}, err
	}
	if tag.RowsAffected() == 1 {
		var balance int64
		err := tx.QueryRow(ctx, `
INSERT INTO accounts AS a (user_id, balance_cents) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET balance_cents = a.balance_cents + EXCLUDED.balance_cents
RETURNING balance_cents`, user, amount).Scan(&balance)
		if err != nil {
			return Balance{}, err
		}
		if balance > MaxBalanceCents {
			return Balance{}, fn.Invalidf("a balance of %d cents would be over the limit of %d", balance, MaxBalanceCents)
		}
	}
	b, err := s.read(ctx, tx, user)
	if err != nil {
		return Balance{}, err
	}
	return b, tx.Commit(ctx)
}
