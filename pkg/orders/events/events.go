// Package events is the vocabulary of the orders domain (#18): the
// CloudEvent types its functions exchange through the orders Broker, their
// payloads (JSON, snake_case, money in integer cents) and the ids derived
// from the input, so that a redelivered, replayed or duplicated input makes
// the same output and every recipient can recognise it (docs/ORDERS.md).
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// Event types.
const (
	TypeRequested = "dev.jobflow.order.requested"
	TypePlaced    = "dev.jobflow.order.placed"
	TypeValidated = "dev.jobflow.order.validated"
	TypeConfirmed = "dev.jobflow.order.confirmed"
	TypeRejected  = "dev.jobflow.order.rejected"
	TypeSettled   = "dev.jobflow.order.settled"
	TypeUser      = "dev.jobflow.user.changed"
)

// Sources of the events each function produces.
const (
	SourceOrders   = "/jobflow/orders"
	SourcePayment  = "/jobflow/payment"
	SourceStock    = "/jobflow/stock"
	SourceDelivery = "/jobflow/delivery"
	SourceSaga     = "/jobflow/saga"
	SourceUsers    = "/jobflow/users"
)

// PartitionKey is the CloudEvents extension that becomes the Kafka record
// key: the order id (user events: the user id), so one order's events stay
// in order on one partition.
const PartitionKey = "partitionkey"

// Check names a participant of the scatter-gather validation.
type Check string

// The three checks of an order.
const (
	CheckPayment  Check = "payment"
	CheckStock    Check = "stock"
	CheckDelivery Check = "delivery"
)

// Checks are every check an order needs before it is confirmed.
var Checks = []Check{CheckPayment, CheckStock, CheckDelivery}

// Valid reports whether c is one of Checks.
func (c Check) Valid() bool {
	return c == CheckPayment || c == CheckStock || c == CheckDelivery
}

// Source is the CloudEvent source of the participant doing check c.
func (c Check) Source() string { return "/jobflow/" + string(c) }

// Action is what a participant did with its reserve once the order was decided.
type Action string

// Settle actions.
const (
	ActionCharged  Action = "charged"  // payment: the reserved money is taken
	ActionReleased Action = "released" // any: the reserve is given back (compensation)
	ActionShipped  Action = "shipped"  // stock: the reserved items left the warehouse
	ActionAssigned Action = "assigned" // delivery: the courier is booked for good
	ActionNone     Action = "none"     // nothing was reserved (the check failed or never ran)
)

// Requested is the data of dev.jobflow.order.requested (the CloudEvent form
// of POST /orders; its source+id is the idempotency key).
type Requested struct {
	ProductID      int64 `json:"product_id"`
	Number         int64 `json:"number"`
	UnitPriceCents int64 `json:"unit_price_cents"`
}

// Placed is the data of dev.jobflow.order.placed.
type Placed struct {
	OrderID        uuid.UUID `json:"order_id"`
	UserID         int64     `json:"user_id"`
	ProductID      int64     `json:"product_id"`
	Number         int64     `json:"number"`
	UnitPriceCents int64     `json:"unit_price_cents"`
	AmountCents    int64     `json:"amount_cents"`
	PlacedAt       time.Time `json:"placed_at"`
	Deadline       time.Time `json:"deadline"`
}

// Validate checks what every recipient relies on.
func (p Placed) Validate() error {
	var errs []error
	if p.OrderID == uuid.Nil {
		errs = append(errs, errors.New("order_id is required"))
	}
	if p.UserID <= 0 {
		errs = append(errs, fmt.Errorf("user_id %d: want a positive id", p.UserID))
	}
	if p.ProductID <= 0 {
		errs = append(errs, fmt.Errorf("product_id %d: want a positive id", p.ProductID))
	}
	if p.Number <= 0 {
		errs = append(errs, fmt.Errorf("number %d: want at least 1", p.Number))
	}
	if p.UnitPriceCents <= 0 {
		errs = append(errs, fmt.Errorf("unit_price_cents %d: want a positive price", p.UnitPriceCents))
	}
	if amount, err := Amount(p.Number, p.UnitPriceCents); err != nil {
		errs = append(errs, err)
	} else if amount != p.AmountCents {
		errs = append(errs, fmt.Errorf("amount_cents %d: want number × unit_price_cents = %d", p.AmountCents, amount))
	}
	if p.PlacedAt.IsZero() || p.Deadline.IsZero() {
		errs = append(errs, errors.New("placed_at and deadline are required"))
	} else if p.Deadline.Before(p.PlacedAt) {
		errs = append(errs, errors.New("deadline is before placed_at"))
	}
	return errors.Join(errs...)
}

// MaxAmountCents bounds an order's amount (one billion units of currency):
// far below int64's limit, so sums of many orders cannot overflow either.
const MaxAmountCents = int64(1e11)

// Amount is number × unit price in cents, refused when it overflows or
// passes MaxAmountCents.
func Amount(number, unitPriceCents int64) (int64, error) {
	if number <= 0 || unitPriceCents <= 0 {
		return 0, fmt.Errorf("number %d and unit price %d cents must be positive", number, unitPriceCents)
	}
	if number > MaxAmountCents/unitPriceCents {
		return 0, fmt.Errorf("amount %d × %d cents is over the limit of %d cents", number, unitPriceCents, MaxAmountCents)
	}
	return number * unitPriceCents, nil
}

// Validated is the data of dev.jobflow.order.validated: one participant's answer.
type Validated struct {
	OrderID uuid.UUID `json:"order_id"`
	Check   Check     `json:"check"`
	OK      bool      `json:"ok"`
	Reason  string    `json:"reason,omitempty"`
}

// Validate checks the payload.
func (v Validated) Validate() error {
	var errs []error
	if v.OrderID == uuid.Nil {
		errs = append(errs, errors.New("order_id is required"))
	}
	if !v.Check.Valid() {
		errs = append(errs, fmt.Errorf("check %q: want payment, stock or delivery", v.Check))
	}
	if !v.OK && v.Reason == "" {
		errs = append(errs, errors.New("a failed check needs a reason"))
	}
	return errors.Join(errs...)
}

// Decided is the data of dev.jobflow.order.confirmed and .rejected.
type Decided struct {
	OrderID     uuid.UUID `json:"order_id"`
	UserID      int64     `json:"user_id"`
	AmountCents int64     `json:"amount_cents"`
	Reasons     []string  `json:"reasons"`
	DecidedAt   time.Time `json:"decided_at"`
}

// Validate checks the payload.
func (d Decided) Validate() error {
	var errs []error
	if d.OrderID == uuid.Nil {
		errs = append(errs, errors.New("order_id is required"))
	}
	if d.UserID <= 0 {
		errs = append(errs, fmt.Errorf("user_id %d: want a positive id", d.UserID))
	}
	if d.AmountCents <= 0 || d.AmountCents > MaxAmountCents {
		errs = append(errs, fmt.Errorf("amount_cents %d: want 1 to %d", d.AmountCents, MaxAmountCents))
	}
	return errors.Join(errs...)
}

// Settled is the data of dev.jobflow.order.settled: what a participant did
// with its reserve after the decision.
type Settled struct {
	OrderID uuid.UUID `json:"order_id"`
	Check   Check     `json:"check"`
	Action  Action    `json:"action"`
	Detail  string    `json:"detail,omitempty"`
}

// UserChanged is the data of dev.jobflow.user.changed (a row of the
// compacted topic of users; the highest version wins).
type UserChanged struct {
	UserID    int64  `json:"user_id"`
	Username  string `json:"username"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Phone     string `json:"phone"`
	Admin     bool   `json:"admin"`
	Version   int64  `json:"version"`
}

// orderNamespace is the UUIDv5 namespace of order ids.
var orderNamespace = uuid.MustParse("3b0f7c52-9a1e-4e43-8d6a-0c2f1f6b9e10")

// OrderID derives an order's id from its user and the idempotency key
// (the Idempotency-Key header, or a CloudEvent's source+id): a resend
// makes the same id, hence no second order.
func OrderID(userID int64, idempotencyKey string) uuid.UUID {
	return uuid.NewSHA1(orderNamespace, []byte(strconv.FormatInt(userID, 10)+"\x00"+idempotencyKey))
}

// Event ids, derived from the input so that any redelivery makes the same
// output event (recipients dedupe on source + id).
func PlacedID(order uuid.UUID) string { return "placed/" + order.String() }
func ValidatedID(c Check, order uuid.UUID) string {
	return "validated/" + string(c) + "/" + order.String()
}
func DecidedID(order uuid.UUID) string               { return "decided/" + order.String() }
func SettledID(c Check, order uuid.UUID) string      { return "settled/" + string(c) + "/" + order.String() }
func UserChangedID(user int64, version int64) string { return fmt.Sprintf("user/%d/%d", user, version) }

// New builds an event of type typ from source with id, partition key and
// JSON data.
func New(typ, source, id, key string, data any) (event.Event, error) {
	e := event.New()
	e.SetType(typ)
	e.SetSource(source)
	e.SetID(id)
	e.SetExtension(PartitionKey, key)
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return e, fmt.Errorf("encode %s data: %w", typ, err)
	}
	return e, nil
}

// NewPlaced is the order.placed event of p.
func NewPlaced(p Placed) (event.Event, error) {
	return New(TypePlaced, SourceOrders, PlacedID(p.OrderID), p.OrderID.String(), p)
}

// NewValidated is participant v.Check's answer for an order.
func NewValidated(v Validated) (event.Event, error) {
	return New(TypeValidated, v.Check.Source(), ValidatedID(v.Check, v.OrderID), v.OrderID.String(), v)
}

// NewDecided is the saga's decision: confirmed, or rejected when reasons
// is not empty.
func NewDecided(d Decided) (event.Event, error) {
	typ := TypeConfirmed
	if len(d.Reasons) > 0 {
		typ = TypeRejected
	} else {
		d.Reasons = []string{}
	}
	return New(typ, SourceSaga, DecidedID(d.OrderID), d.OrderID.String(), d)
}

// NewSettled is participant s.Check's report on its reserve.
func NewSettled(s Settled) (event.Event, error) {
	return New(TypeSettled, s.Check.Source(), SettledID(s.Check, s.OrderID), s.OrderID.String(), s)
}

// NewUserChanged is the users function's event for one version of a user.
func NewUserChanged(u UserChanged) (event.Event, error) {
	return New(TypeUser, SourceUsers, UserChangedID(u.UserID, u.Version), strconv.FormatInt(u.UserID, 10), u)
}

// Decode reads e's JSON data into v strictly (unknown fields, trailing
// data and invalid UTF-8 are errors) after checking e's type is want; the
// error says why, for a 400.
func Decode(e event.Event, want string, v any) error {
	if e.Type() != want {
		return fmt.Errorf("event type %q: want %s", e.Type(), want)
	}
	data := e.Data()
	if !utf8.Valid(data) {
		return fmt.Errorf("%s data is not valid UTF-8", want)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s data: %w", want, err)
	}
	if dec.More() {
		return fmt.Errorf("%s data: more than one JSON value", want)
	}
	return nil
}
