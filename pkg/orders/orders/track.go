package orders

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// track applies an event of the order's life (from the orders-status
// Trigger) to the order: a validation or a settlement is a step, a
// decision the status. Each is idempotent by its key, so redelivery and
// replay change nothing; their order does not matter either (a decision
// is final, steps are a set).
func (f *Function) track(ctx context.Context, in event.Event) error {
	var err error
	switch in.Type() {
	case events.TypeValidated:
		var v events.Validated
		if err = decode(in, &v, func() error { return v.Validate() }); err == nil {
			err = f.store.AddStep(ctx, v.OrderID, "validated/"+string(v.Check), v.OK, v.Reason)
		}
	case events.TypeSettled:
		var s events.Settled
		if err = decode(in, &s, func() error { return checkSettled(s) }); err == nil {
			err = f.store.AddStep(ctx, s.OrderID, "settled/"+string(s.Check), true, joinDetail(s))
		}
	case events.TypeConfirmed, events.TypeRejected:
		var d events.Decided
		if err = decode(in, &d, func() error { return d.Validate() }); err == nil {
			status := StatusConfirmed
			if in.Type() == events.TypeRejected {
				status = StatusRejected
			}
			err = f.store.Decide(ctx, d, status)
		}
	default:
		return fn.Invalidf("event type %q: orders takes %s, %s, %s, %s and %s", in.Type(),
			events.TypeRequested, events.TypeValidated, events.TypeSettled, events.TypeConfirmed, events.TypeRejected)
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// decode reads in's data into v and checks it with validate: 400 on any problem.
func decode(in event.Event, v any, validate func() error) error {
	if err := events.Decode(in, in.Type(), v); err != nil {
		return fn.Invalid(err)
	}
	if err := validate(); err != nil {
		return fn.Invalidf("%s %s: %v", in.Type(), in.ID(), err)
	}
	return nil
}

func checkSettled(s events.Settled) error {
	if s.OrderID == uuid.Nil {
		return fmt.Errorf("order_id is required")
	}
	if !s.Check.Valid() {
		return fmt.Errorf("check %q: want payment, stock or delivery", s.Check)
	}
	if s.Action == "" {
		return fmt.Errorf("action is required")
	}
	return nil
}

func joinDetail(s events.Settled) string {
	if s.Detail == "" {
		return string(s.Action)
	}
	return string(s.Action) + ": " + s.Detail
}
