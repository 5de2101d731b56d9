package orders

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/httpjson"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Config of the orders function.
type Config struct {
	URL      string        `envconfig:"JOBFLOW_ORDERS_URL" required:"true" desc:"PostgreSQL URL of the orders database"`
	Deadline time.Duration `envconfig:"ORDERS_DEADLINE" default:"5s" desc:"how long an order may stay pending: its deadline (in order.placed) is placed_at + this; the saga rejects it after"`
}

// MaxKeyLen bounds an Idempotency-Key.
const MaxKeyLen = 200

// Function is the orders HTTP function:
//
//	POST /orders       (token, Idempotency-Key) {"product_id","number","unit_price_cents"} -> 202 order
//	GET  /orders       (token)                                                             -> 200 [order] (the caller's, newest first)
//	GET  /orders/{id}  (token)                                                             -> 200 order with steps; 404 for another user's
//	POST /             a CloudEvent: dev.jobflow.order.requested (token; source+id is the idempotency key) -> 202 order,
//	                   or the Trigger's validated, settled, confirmed, rejected                            -> 202
type Function struct {
	pgdb.Lifecycle // the store's database
	cfg            Config
	store          *Store
	tokens         *auth.Tokens
	emitter        *fn.Emitter
	api            http.Handler
	now            func() time.Time
}

// NewFunction returns an unstarted orders function.
func NewFunction() *Function { return &Function{now: time.Now} }

// Start reads the config, connects and checks K_SINK (the orders Broker).
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	if err := fn.Process("", &f.cfg); err != nil {
		return err
	}
	if f.cfg.Deadline <= 0 {
		return fmt.Errorf("ORDERS_DEADLINE %s: want a positive duration", f.cfg.Deadline)
	}
	tokens, err := auth.FromEnv()
	if err != nil {
		return err
	}
	em, err := fn.NewEmitter("orders")
	if err != nil {
		return err
	}
	if !em.HasSink(fn.DefaultOutput) {
		return errors.New("orders needs K_SINK: the orders Broker, where order.placed goes")
	}
	store, err := Open(ctx, f.cfg.URL)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", f.place)
	mux.HandleFunc("GET /orders", f.list)
	mux.HandleFunc("GET /orders/{id}", f.get)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, errors.New("no such endpoint: POST /orders, GET /orders, GET /orders/<id>, POST / (CloudEvent)")))
	})
	f.DB = store.DB
	f.store, f.tokens, f.emitter, f.api = store, tokens, em, tokens.Middleware(mux)
	return nil
}

// Handle routes a request: CloudEvents on POST /, the API elsewhere.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if f.api == nil {
		fn.WriteError(w, fn.Unavailable(errors.New("orders not started")))
		return
	}
	in := fn.EventOrAPI(w, r, f.api)
	if in == nil {
		return
	}
	if in.Type() == events.TypeRequested {
		f.requested(w, r, *in)
		return
	}
	if err := f.track(r.Context(), *in); err != nil {
		fn.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// place is POST /orders.
func (f *Function) place(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.FromContext(r.Context())
	key := r.Header.Get("Idempotency-Key")
	if err := validKey(key); err != nil {
		fn.WriteError(w, err)
		return
	}
	var q events.Requested
	if err := httpjson.Decode(r, &q); err != nil {
		fn.WriteError(w, err)
		return
	}
	f.answerPlaced(w, r.Context(), c.UserID, "rest\x00"+key, q)
}

// requested is the CloudEvent form of POST /orders.
func (f *Function) requested(w http.ResponseWriter, r *http.Request, in event.Event) {
	c, err := f.tokens.FromRequest(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="jobflow-orders"`)
		fn.WriteError(w, fn.WithStatus(http.StatusUnauthorized, err))
		return
	}
	var q events.Requested
	if err := events.Decode(in, events.TypeRequested, &q); err != nil {
		fn.WriteError(w, fn.Invalid(err))
		return
	}
	f.answerPlaced(w, r.Context(), c.UserID, "ce\x00"+in.Source()+"\x00"+in.ID(), q)
}

func (f *Function) answerPlaced(w http.ResponseWriter, ctx context.Context, user int64, key string, q events.Requested) {
	p, err := NewPlaced(user, key, q, f.now(), f.cfg.Deadline)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	o, err := f.store.Place(ctx, p, f.emitPlaced)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	w.Header().Set("Location", "/orders/"+o.ID.String())
	fn.WriteJSON(w, http.StatusAccepted, o)
}

func (f *Function) emitPlaced(ctx context.Context, p events.Placed) error {
	e, err := events.NewPlaced(p)
	if err != nil {
		return err
	}
	return f.emitter.Send(ctx, fn.DefaultOutput, e)
}

// NewPlaced checks a request (400 with every problem) and makes its
// order.placed: the order id derived from the user and the idempotency
// key, the amount, the deadline.
func NewPlaced(user int64, key string, q events.Requested, now time.Time, deadline time.Duration) (events.Placed, error) {
	var errs []error
	if q.ProductID <= 0 {
		errs = append(errs, fmt.Errorf("product_id %d: want a positive id", q.ProductID))
	}
	if q.Number <= 0 {
		errs = append(errs, fmt.Errorf("number %d: want at least 1", q.Number))
	}
	if q.UnitPriceCents <= 0 {
		errs = append(errs, fmt.Errorf("unit_price_cents %d: want a positive price in cents", q.UnitPriceCents))
	}
	amount, err := int64(0), error(nil)
	if len(errs) == 0 {
		amount, err = events.Amount(q.Number, q.UnitPriceCents)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return events.Placed{}, fn.Invalid(err)
	}
	now = now.UTC().Truncate(time.Microsecond) // as PostgreSQL keeps it: a resend's event is byte-identical
	return events.Placed{OrderID: events.OrderID(user, key), UserID: user, ProductID: q.ProductID, Number: q.Number,
		UnitPriceCents: q.UnitPriceCents, AmountCents: amount, PlacedAt: now, Deadline: now.Add(deadline)}, nil
}

func validKey(k string) error {
	switch {
	case k == "":
		return fn.Invalidf("Idempotency-Key header is required: a key of your choosing that makes a resend of this order no second order")
	case len(k) > MaxKeyLen:
		return fn.Invalidf("Idempotency-Key: at most %d bytes", MaxKeyLen)
	case strings.IndexFunc(k, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) }) >= 0:
		return fn.Invalidf("Idempotency-Key: printable ASCII only")
	}
	return nil
}

func (f *Function) list(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.FromContext(r.Context())
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			fn.WriteError(w, fn.Invalidf("limit %q: want 1 to 1000", s))
			return
		}
		limit = n
	}
	list, err := f.store.List(r.Context(), c.UserID, limit)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	if list == nil {
		list = []Order{}
	}
	fn.WriteJSON(w, http.StatusOK, list)
}

func (f *Function) get(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.FromContext(r.Context())
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		fn.WriteError(w, fn.Invalidf("order id %q is not a UUID", r.PathValue("id")))
		return
	}
	o, err := f.store.Get(r.Context(), c.UserID, id)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, o)
}

func storeError(err error) error {
	var se *fn.StatusError
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, ErrNoOrder):
		return fn.WithStatus(http.StatusNotFound, err)
	case errors.Is(err, ErrConflict):
		return fn.WithStatus(http.StatusUnprocessableEntity, err)
	default:
		return fn.Unavailable(err)
	}
}
