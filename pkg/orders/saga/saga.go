// Package saga is the orders saga's orchestrator, the aggregator of the
// scatter-gather validation: it gathers each order's order.placed and the
// three order.validated answers (payment, stock, delivery) in its own
// database and decides once: all three ok → order.confirmed; the first
// failure → order.rejected with the reasons; still pending at its deadline
// → order.rejected (timeout), found by a sweep that a PingSource drives.
//
// Every input is handled exactly once (package once) and the decision's id
// is derived from the order, so a redelivered input re-emits the same
// decision and changes nothing. Its decisions come back to it through the
// broker; one not seen back within SAGA_REPUBLISH_AFTER (its emit was lost
// with the delivery that made it) is emitted again by the sweep: the
// saga's table is its own outbox.
package saga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/once"
	"github.com/jobflow/jobflow/pkg/orders/participant"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Schema of the saga database.
const Schema = once.Schema + `
CREATE TABLE IF NOT EXISTS orders (
	order_id     uuid PRIMARY KEY,
	user_id      bigint NOT NULL,
	amount_cents bigint NOT NULL,
	placed_at    timestamptz NOT NULL,
	deadline     timestamptz NOT NULL,
	status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
	reasons      text[] NOT NULL DEFAULT '{}',
	decided_at   timestamptz,
	published    boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS orders_pending ON orders (deadline) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS orders_unpublished ON orders (decided_at) WHERE status <> 'pending' AND NOT published;
CREATE TABLE IF NOT EXISTS checks (
	order_id    uuid NOT NULL,
	check_name  text NOT NULL,
	ok          boolean NOT NULL,
	reason      text NOT NULL DEFAULT '',
	answered_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, check_name)
);`

// PingType is the type of the PingSource's events that drive the sweep.
const PingType = "dev.knative.sources.ping"

// Config of the saga.
type Config struct {
	URL            string        `envconfig:"JOBFLOW_SAGA_URL" required:"true" desc:"PostgreSQL URL of the saga database"`
	Deadline       time.Duration `envconfig:"ORDERS_DEADLINE" default:"5s" desc:"longest an order stays pending after placed_at (an earlier deadline in order.placed wins); then it is rejected (timeout)"`
	RepublishAfter time.Duration `envconfig:"SAGA_REPUBLISH_AFTER" default:"10s" desc:"a decision not seen back through the broker after this long is emitted again"`
	SweepLimit     int           `envconfig:"SAGA_SWEEP_LIMIT" default:"1000" desc:"most orders a sweep times out or republishes at once"`
	once.Config                  // ORDERS_COMMIT_BATCH: the group commit
}

// Saga is the orchestrator's handler (a fn.Handler with a lifecycle).
type Saga struct {
	cfg            Config
	pgdb.Lifecycle // the saga database
	once           *once.Committer
	now            func() time.Time
}

// New returns an unstarted saga.
func New() *Saga { return &Saga{now: time.Now} }

// Start reads the config, connects and applies the schema.
func (s *Saga) Start(ctx context.Context, _ map[string]string) error {
	if err := fn.Process("", &s.cfg); err != nil {
		return err
	}
	if s.cfg.Deadline <= 0 || s.cfg.RepublishAfter <= 0 || s.cfg.SweepLimit <= 0 {
		return errors.New("saga config: ORDERS_DEADLINE, SAGA_REPUBLISH_AFTER and SAGA_SWEEP_LIMIT must be positive")
	}
	db, err := pgdb.Open(ctx, "saga database", s.cfg.URL, Schema)
	if err != nil {
		return err
	}
	s.DB, s.once = db, once.NewCommitter(db.Pool, "saga", s.cfg.Config)
	return nil
}

// Handle takes order.placed, order.validated, its own decisions coming
// back and the sweep's pings; it emits decisions.
func (s *Saga) Handle(ctx context.Context, in event.Event) ([]fn.Output, error) {
	if s.DB == nil {
		return nil, fn.Unavailable(errors.New("saga not started"))
	}
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
		effect = func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) { return s.placed(ctx, tx, p) }
	case events.TypeValidated:
		var v events.Validated
		if err := events.Decode(in, events.TypeValidated, &v); err != nil {
			return nil, fn.Invalid(err)
		}
		if err := v.Validate(); err != nil {
			return nil, fn.Invalidf("order.validated: %v", err)
		}
		effect = func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) { return s.validated(ctx, tx, v) }
	case events.TypeConfirmed, events.TypeRejected:
		var err error
		if effect, err = s.seenBack(in); err != nil {
			return nil, err
		}
	case PingType:
		outs, err := s.Sweep(ctx)
		if err != nil {
			return nil, fn.Unavailable(err)
		}
		return outputs(outs), nil
	default:
		return nil, fn.Invalidf("the saga takes %s, %s, its decisions and %s, not %q",
			events.TypePlaced, events.TypeValidated, PingType, in.Type())
	}
	res, err := s.once.Do(ctx, in, effect)
	if err != nil {
		return nil, fn.Unavailable(fmt.Errorf("saga: %w", err))
	}
	return outputs(res.Replies), nil
}

func outputs(evs []event.Event) []fn.Output {
	outs := make([]fn.Output, 0, len(evs))
	for _, e := range evs {
		outs = append(outs, fn.Output{To: fn.DefaultOutput, Event: e})
	}
	return outs
}

func (s *Saga) placed(ctx context.Context, tx pgx.Tx, p events.Placed) ([]event.Event, error) {
	if err := participant.LockOrder(ctx, tx, p.OrderID); err != nil {
		return nil, err
	}
	deadline := p.Deadline
	if limit := p.PlacedAt.Add(s.cfg.Deadline); limit.Before(deadline) {
		deadline = limit
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO orders (order_id, user_id, amount_cents, placed_at, deadline) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (order_id) DO NOTHING`, p.OrderID, p.UserID, p.AmountCents, p.PlacedAt, deadline); err != nil {
		return nil, fmt.Errorf("store order %s: %w", p.OrderID, err)
	}
	return s.decide(ctx, tx, p.OrderID)
}

func (s *Saga) validated(ctx context.Context, tx pgx.Tx, v events.Validated) ([]event.Event, error) {
	if err := participant.LockOrder(ctx, tx, v.OrderID); err != nil {
		return nil, err
	}
	// The first answer of a check counts; a participant answers once anyway.
	if _, err := tx.Exec(ctx, `
INSERT INTO checks (order_id, check_name, ok, reason) VALUES ($1, $2, $3, $4)
ON CONFLICT (order_id, check_name) DO NOTHING`, v.OrderID, string(v.Check), v.OK, v.Reason); err != nil {
		return nil, fmt.Errorf("store check %s of %s: %w", v.Check, v.OrderID, err)
	}
	return s.decide(ctx, tx, v.OrderID)
}

// decide decides a pending order whose answers allow it: any failure
// rejects, three oks confirm. Answers that come before order.placed wait
// for it (the decision needs the order's user and amount).
func (s *Saga) decide(ctx context.Context, tx pgx.Tx, order uuid.UUID) ([]event.Event, error) {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM orders WHERE order_id = $1 FOR UPDATE`, order).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && status != "pending") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT check_name, ok, reason FROM checks WHERE order_id = $1 ORDER BY answered_at, check_name`, order)
	if err != nil {
		return nil, err
	}
	oks, reasons := 0, []string{}
	var name, reason string
	var ok bool
	_, err = pgx.ForEachRow(rows, []any{&name, &ok, &reason}, func() error {
		if ok {
			oks++
		} else {
			reasons = append(reasons, reason)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(reasons) > 0:
		return s.record(ctx, tx, order, reasons)
	case oks == len(events.Checks):
		return s.record(ctx, tx, order, nil)
	}
	return nil, nil
}

// record stores the decision of a pending order and returns its event
// (none when the order is no longer pending).
func (s *Saga) record(ctx context.Context, tx pgx.Tx, order uuid.UUID, reasons []string) ([]event.Event, error) {
	status := "confirmed"
	if reasons == nil {
		reasons = []string{}
	}
	if len(reasons) > 0 {
		status = "rejected"
	}
	d := events.Decided{OrderID: order, Reasons: reasons}
	err := tx.QueryRow(ctx, `
UPDATE orders SET status = $2, reasons = $3, decided_at = now() WHERE order_id = $1 AND status = 'pending'
RETURNING user_id, amount_cents, decided_at`, order, status, reasons).Scan(&d.UserID, &d.AmountCents, &d.DecidedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil // decided meanwhile (the sweep and an answer raced): once is enough
	}
	if err != nil {
		return nil, fmt.Errorf("decide %s: %w", order, err)
	}
	e, err := events.NewDecided(d)
	if err != nil {
		return nil, err
	}
	return []event.Event{e}, nil
}

// seenBack is the effect of a decision coming back: it marks the
// decision published (it went through the broker). It runs in the group
// commit like every other input, so it costs no commit of its own.
func (s *Saga) seenBack(in event.Event) (once.Effect, error) {
	if in.Source() != events.SourceSaga {
		return nil, fn.Invalidf("a decision from %q: only the saga (%s) decides", in.Source(), events.SourceSaga)
	}
	var d events.Decided
	if err := events.Decode(in, in.Type(), &d); err != nil {
		return nil, fn.Invalid(err)
	}
	return func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
		_, err := tx.Exec(ctx, `UPDATE orders SET published = true WHERE order_id = $1 AND status <> 'pending' AND NOT published`, d.OrderID)
		if err != nil {
			return nil, fmt.Errorf("mark %s published: %w", d.OrderID, err)
		}
		return nil, nil
	}, nil
}

// Sweep rejects the pending orders past their deadline (timeout, naming
// the checks that did not answer) and returns their decisions, with the
// decisions not seen back through the broker in time, to emit again.
func (s *Saga) Sweep(ctx context.Context) ([]event.Event, error) {
	var out []event.Event
	for {
		evs, n, err := s.timeoutSome(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, evs...)
		if n < s.cfg.SweepLimit || len(out) >= 10*s.cfg.SweepLimit {
			break
		}
	}
	rows, err := s.DB.Pool.Query(ctx, `
SELECT order_id, user_id, amount_cents, reasons, decided_at FROM orders
WHERE status <> 'pending' AND NOT published AND decided_at < $1 ORDER BY decided_at LIMIT $2`,
		s.now().Add(-s.cfg.RepublishAfter), s.cfg.SweepLimit)
	if err != nil {
		return out, fmt.Errorf("unpublished decisions: %w", err)
	}
	var d events.Decided
	_, err = pgx.ForEachRow(rows, []any{&d.OrderID, &d.UserID, &d.AmountCents, &d.Reasons, &d.DecidedAt}, func() error {
		e, err := events.NewDecided(d)
		out = append(out, e)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("unpublished decisions: %w", err)
	}
	return out, nil
}

// timeoutSome rejects up to SweepLimit overdue orders in one transaction.
func (s *Saga) timeoutSome(ctx context.Context) ([]event.Event, int, error) {
	tx, err := s.DB.Pool.Begin(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `
SELECT o.order_id, coalesce(array_agg(c.check_name) FILTER (WHERE c.check_name IS NOT NULL), '{}')
FROM (SELECT order_id FROM orders WHERE status = 'pending' AND deadline < $1 ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED) o
LEFT JOIN checks c ON c.order_id = o.order_id GROUP BY o.order_id`, s.now(), s.cfg.SweepLimit)
	if err != nil {
		return nil, 0, fmt.Errorf("overdue orders: %w", err)
	}
	type overdue struct {
		id       uuid.UUID
		answered []string
	}
	var due []overdue
	var o overdue
	if _, err := pgx.ForEachRow(rows, []any{&o.id, &o.answered}, func() error {
		due = append(due, overdue{o.id, slices.Clone(o.answered)})
		return nil
	}); err != nil {
		return nil, 0, fmt.Errorf("overdue orders: %w", err)
	}
	var out []event.Event
	for _, o := range due {
		var missing []string
		for _, c := range events.Checks {
			if !slices.Contains(o.answered, string(c)) {
				missing = append(missing, string(c))
			}
		}
		evs, err := s.record(ctx, tx, o.id, []string{"timeout: no answer from " + strings.Join(missing, ", ") + " by the deadline"})
		if err != nil {
			return nil, 0, err
		}
		out = append(out, evs...)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, err
	}
	return out, len(due), nil
}
