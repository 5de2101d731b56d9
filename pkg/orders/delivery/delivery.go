// Package delivery is the orders saga's delivery participant: the shop's
// couriers (admin-only) and a reserve per order that books a courier for a
// delivery slot until the decision assigns it for good (confirmed) or
// frees the slot (rejected). A courier is never booked twice for one slot:
// the bookings table's primary key (courier, slot) refuses it.
//
// An order's slot is the first free one-hour slot, from
// DELIVERY_LEAD after the order was placed, within DELIVERY_SLOTS slots;
// none free is a refused check ("no courier").
package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/participant"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Schema of the delivery database (besides participant.Schema).
const Schema = `
CREATE TABLE IF NOT EXISTS couriers (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bookings (
	courier_id bigint NOT NULL REFERENCES couriers (id),
	slot       timestamptz NOT NULL,
	order_id   uuid NOT NULL UNIQUE,
	PRIMARY KEY (courier_id, slot)
);
CREATE TABLE IF NOT EXISTS reserves (
	order_id   uuid PRIMARY KEY,
	courier_id bigint,
	slot       timestamptz,
	state      text NOT NULL CHECK (state IN ('reserved', 'assigned', 'released', 'refused')),
	reason     text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	settled_at timestamptz
);`

// Config of the delivery function.
type Config struct {
	Lead  time.Duration `envconfig:"DELIVERY_LEAD" default:"24h" desc:"how long after an order is placed its delivery can start at the earliest"`
	Slots int           `envconfig:"DELIVERY_SLOTS" default:"8" desc:"how many one-hour slots from then an order may be delivered in (with N couriers, N × DELIVERY_SLOTS orders per window)"`
}

// SlotLength is a delivery slot.
const SlotLength = time.Hour

// MaxNameLen bounds a courier's name.
const MaxNameLen = 200

// Spec is the delivery function.
var Spec = participant.Spec{
	Name: "delivery", URLEnv: "JOBFLOW_DELIVERY_URL", Schema: Schema,
	Open: func(_ context.Context, db *pgdb.DB) (participant.Service, error) {
		var cfg Config
		if err := fn.Process("", &cfg); err != nil {
			return nil, err
		}
		if cfg.Slots < 1 || cfg.Slots > 24*14 || cfg.Lead < 0 {
			return nil, fmt.Errorf("DELIVERY_SLOTS %d: want 1 to %d; DELIVERY_LEAD %s: want >= 0", cfg.Slots, 24*14, cfg.Lead)
		}
		return &Service{db: db, cfg: cfg}, nil
	},
}

// Service is the delivery participant.
type Service struct {
	db  *pgdb.DB
	cfg Config
}

// Check is delivery.
func (s *Service) Check() events.Check { return events.CheckDelivery }

// Reserve books the first courier free in the order's window. Bookings of
// one window are serialised by a lock on its first slot, so concurrent
// orders take different couriers instead of failing on the primary key.
func (s *Service) Reserve(ctx context.Context, tx pgx.Tx, p events.Placed) (bool, string, error) {
	first := p.PlacedAt.Add(s.cfg.Lead).Truncate(SlotLength).Add(SlotLength).UTC()
	last := first.Add(time.Duration(s.cfg.Slots-1) * SlotLength)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7463118, $1)`, int32(first.Unix()/int64(SlotLength/time.Second))); err != nil {
		return false, "", err
	}
	var courier int64
	var slot time.Time
	err := tx.QueryRow(ctx, `
SELECT c.id, s.slot FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 hour') AS s (slot)
CROSS JOIN couriers c
WHERE NOT EXISTS (SELECT 1 FROM bookings b WHERE b.courier_id = c.id AND b.slot = s.slot)
ORDER BY s.slot, c.id LIMIT 1`, first, last).Scan(&courier, &slot)
	if errors.Is(err, pgx.ErrNoRows) {
		reason := fmt.Sprintf("no courier free from %s to %s", first.Format(time.RFC3339), last.Add(SlotLength).Format(time.RFC3339))
		_, err := tx.Exec(ctx, `INSERT INTO reserves (order_id, state, reason) VALUES ($1, 'refused', $2)`, p.OrderID, reason)
		return false, reason, err
	}
	if err != nil {
		return false, "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO bookings (courier_id, slot, order_id) VALUES ($1, $2, $3)`, courier, slot, p.OrderID); err != nil {
		return false, "", err
	}
	_, err = tx.Exec(ctx, `INSERT INTO reserves (order_id, courier_id, slot, state) VALUES ($1, $2, $3, 'reserved')`, p.OrderID, courier, slot)
	return err == nil, "", err
}

// Settle assigns the booked courier (confirmed) or frees the slot (rejected).
func (s *Service) Settle(ctx context.Context, tx pgx.Tx, d events.Decided, confirmed bool) (events.Action, string, error) {
	var courier *int64
	var slot *time.Time
	var state string
	err := tx.QueryRow(ctx, `SELECT courier_id, slot, state FROM reserves WHERE order_id = $1 FOR UPDATE`, d.OrderID).Scan(&courier, &slot, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.ActionNone, "nothing was reserved", nil
	}
	if err != nil {
		return "", "", err
	}
	if state != "reserved" || courier == nil || slot == nil {
		return events.ActionNone, "reserve was " + state, nil
	}
	detail := fmt.Sprintf("courier %d at %s", *courier, slot.UTC().Format(time.RFC3339))
	if confirmed {
		_, err := tx.Exec(ctx, `UPDATE reserves SET state = 'assigned', settled_at = now() WHERE order_id = $1`, d.OrderID)
		return events.ActionAssigned, detail, err
	}
	if _, err := tx.Exec(ctx, `UPDATE reserves SET state = 'released', settled_at = now() WHERE order_id = $1`, d.OrderID); err != nil {
		return "", "", err
	}
	_, err = tx.Exec(ctx, `DELETE FROM bookings WHERE order_id = $1`, d.OrderID)
	return events.ActionReleased, detail + " freed", err
}

// Routes: couriers are admin-only.
//
//	GET  /couriers                  -> 200 [Courier]   (admin)
//	POST /couriers {"name": "..."}  -> 201 Courier     (admin)
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /couriers", participant.AdminOnly(s.list))
	mux.HandleFunc("POST /couriers", participant.AdminOnly(s.create))
	mux.HandleFunc("/", participant.NotFound("GET /couriers, POST /couriers"))
}

// Courier is one courier with how many slots it is booked for.
type Courier struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Bookings int64  `json:"bookings"`
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.Pool.Query(r.Context(), `
SELECT c.id, c.name, count(b.slot) FROM couriers c LEFT JOIN bookings b ON b.courier_id = c.id
GROUP BY c.id ORDER BY c.id LIMIT 10000`)
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Courier])
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, cs)
}

// CourierRequest is the body of POST /couriers.
type CourierRequest struct {
	Name *string `json:"name"`
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	var q CourierRequest
	err := participant.DecodeJSON(r, &q)
	if err == nil && (q.Name == nil || strings.TrimSpace(*q.Name) == "" || utf8.RuneCountInString(*q.Name) > MaxNameLen || strings.ContainsRune(*q.Name, 0)) {
		err = fn.Invalidf("name is required: 1 to %d characters, no NUL", MaxNameLen)
	}
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	c := Courier{Name: strings.TrimSpace(*q.Name)}
	if err := s.db.Pool.QueryRow(r.Context(), `INSERT INTO couriers (name) VALUES ($1) RETURNING id`, c.Name).Scan(&c.ID); err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusCreated, c)
}
