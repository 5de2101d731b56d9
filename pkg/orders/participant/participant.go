// Package participant is what the orders saga's participants (payment,
// stock, delivery) share: each is triggered by dev.jobflow.order.placed,
// tries its reserve in its own database and answers
// dev.jobflow.order.validated; triggered by the decision
// (dev.jobflow.order.confirmed / .rejected) it completes or releases that
// reserve and answers dev.jobflow.order.settled. Every event is handled
// exactly once (package once), and one order's events are serialised by a
// lock on the order, so a decision that overtakes its order.placed (a
// participant that was down past the deadline) leaves a tombstone that
// makes the late reserve refuse instead of holding money, stock or a
// courier for an order that is already decided.
package participant

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/once"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Schema is the participant's own bookkeeping: the events it handled and
// the decisions it saw (a decision seen before the order is a tombstone).
const Schema = once.Schema + `
CREATE TABLE IF NOT EXISTS decisions (
	order_id   uuid PRIMARY KEY,
	confirmed  boolean NOT NULL,
	decided_at timestamptz NOT NULL DEFAULT now()
);`

// Ledger is one participant's reserve logic over its own database. Every
// method runs inside the transaction that also records the event.
type Ledger interface {
	// Check is the participant's name in order.validated and order.settled.
	Check() events.Check
	// Reserve tries to reserve what order p needs. When it cannot, it
	// reserves nothing and says why (ok false); err is for failures that
	// a redelivery may cure (the database).
	Reserve(ctx context.Context, tx pgx.Tx, p events.Placed) (ok bool, reason string, err error)
	// Settle completes (confirmed) or releases (rejected) the order's
	// reserve and says what it did; ActionNone when there was no reserve.
	Settle(ctx context.Context, tx pgx.Tx, d events.Decided, confirmed bool) (action events.Action, detail string, err error)
}

// Handler is a participant's CloudEvent logic over a Ledger.
type Handler struct {
	once   *once.Committer
	ledger Ledger
}

// NewHandler handles events for ledger with the database pool, grouping
// concurrent events into one transaction as cfg says.
func NewHandler(pool *pgxpool.Pool, ledger Ledger, cfg once.Config) *Handler {
	return &Handler{once: once.NewCommitter(pool, string(ledger.Check()), cfg), ledger: ledger}
}

// Handle takes order.placed, .confirmed or .rejected and returns the
// participant's answer (order.validated or order.settled), the same one for
// any redelivery of the event. Another type or invalid data is a 400.
func (h *Handler) Handle(ctx context.Context, in event.Event) (*event.Event, error) {
	var effect once.Effect
	switch in.Type() {
	case events.TypePlaced:
		var p events.Placed
		if err := events.Decode(in, events.TypePlaced, &p); err != nil {
			return nil, fn.Invalid(err)
		}
		if err := p.Validate(); err != nil {
			return nil, fn.Invalidf("order.placed: %v", err)
		}
		effect = func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) { return h.reserve(ctx, tx, p) }
	case events.TypeConfirmed, events.TypeRejected:
		if in.Source() != events.SourceSaga {
			return nil, fn.Invalidf("a decision from %q: only the saga (%s) decides", in.Source(), events.SourceSaga)
		}
		var d events.Decided
		if err := events.Decode(in, in.Type(), &d); err != nil {
			return nil, fn.Invalid(err)
		}
		if err := d.Validate(); err != nil {
			return nil, fn.Invalidf("%s: %v", in.Type(), err)
		}
		confirmed := in.Type() == events.TypeConfirmed
		effect = func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) { return h.settle(ctx, tx, d, confirmed) }
	default:
		return nil, fn.Invalidf("%s takes %s, %s and %s, not %q", h.ledger.Check(),
			events.TypePlaced, events.TypeConfirmed, events.TypeRejected, in.Type())
	}
	res, err := h.once.Do(ctx, in, effect)
	if err != nil {
		return nil, fn.Unavailable(fmt.Errorf("%s: %w", h.ledger.Check(), err))
	}
	if len(res.Replies) == 0 {
		return nil, nil
	}
	return &res.Replies[0], nil
}

func (h *Handler) reserve(ctx context.Context, tx pgx.Tx, p events.Placed) ([]event.Event, error) {
	if err := LockOrder(ctx, tx, p.OrderID); err != nil {
		return nil, err
	}
	v := events.Validated{OrderID: p.OrderID, Check: h.ledger.Check()}
	var confirmed bool
	err := tx.QueryRow(ctx, `SELECT confirmed FROM decisions WHERE order_id = $1`, p.OrderID).Scan(&confirmed)
	switch {
	case err == nil:
		v.Reason = fmt.Sprintf("%s: the order was decided before its check ran", v.Check)
	case err == pgx.ErrNoRows:
		ok, reason, err := h.ledger.Reserve(ctx, tx, p)
		if err != nil {
			return nil, fmt.Errorf("reserve order %s: %w", p.OrderID, err)
		}
		v.OK = ok
		if !ok {
			v.Reason = fmt.Sprintf("%s: %s", v.Check, reason)
		}
	default:
		return nil, fmt.Errorf("read decision of %s: %w", p.OrderID, err)
	}
	out, err := events.NewValidated(v)
	if err != nil {
		return nil, err
	}
	return []event.Event{out}, nil
}

func (h *Handler) settle(ctx context.Context, tx pgx.Tx, d events.Decided, confirmed bool) ([]event.Event, error) {
	if err := LockOrder(ctx, tx, d.OrderID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO decisions (order_id, confirmed) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		d.OrderID, confirmed); err != nil {
		return nil, fmt.Errorf("record decision of %s: %w", d.OrderID, err)
	}
	action, detail, err := h.ledger.Settle(ctx, tx, d, confirmed)
	if err != nil {
		return nil, fmt.Errorf("settle order %s: %w", d.OrderID, err)
	}
	out, err := events.NewSettled(events.Settled{OrderID: d.OrderID, Check: h.ledger.Check(), Action: action, Detail: detail})
	if err != nil {
		return nil, err
	}
	return []event.Event{out}, nil
}

// LockOrder serialises the transactions of one order (until tx ends).
func LockOrder(ctx context.Context, tx pgx.Tx, order uuid.UUID) error {
	key := int64(binary.BigEndian.Uint64(order[:8]))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return fmt.Errorf("lock order %s: %w", order, err)
	}
	return nil
}
