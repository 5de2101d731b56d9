package orders_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/orders"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
)

func start(t *testing.T) (http.Handler, *orderstest.Sink, func(user int64) string) {
	t.Helper()
	sink := orderstest.NewSink(t, "broker")
	t.Setenv("JOBFLOW_ORDERS_URL", testenv.PostgresDB(t))
	t.Setenv("ORDERS_JWT_KEY", orderstest.JWTKey)
	t.Setenv("K_SINK", sink.URL)
	f := orders.NewFunction()
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	tokens, err := auth.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	token := func(user int64) string {
		s, err := tokens.Issue(auth.Claims{UserID: user, Username: fmt.Sprint("u", user)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return http.HandlerFunc(f.Handle), sink, token
}

// ceRequest is a CloudEvent POSTed to / in binary mode, with a token.
func ceRequest(t *testing.T, h http.Handler, e event.Event, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://orders/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := &recorder{header: http.Header{}}
	h.ServeHTTP(w, req)
	return w.code, w.body.String()
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(c int)   { r.code = c }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}

func TestPlaceIdempotentlyAndEmitPlaced(t *testing.T) {
	h, sink, token := start(t)
	ann, bob := token(1), token(2)
	key := map[string]string{"Idempotency-Key": "k-1"}
	body := `{"product_id":7,"number":3,"unit_price_cents":1250}`
	var o orders.Order
	if code, b := orderstest.Do(t, h, "POST", "/orders", ann, key, body, &o); code != 202 || o.Status != "pending" || o.AmountCents != 3750 {
		t.Fatalf("place: %d %s", code, b)
	}
	if o.ID != events.OrderID(1, "rest\x00k-1") {
		t.Errorf("order id %s is not derived from the user and the key", o.ID)
	}
	var again orders.Order
	if code, b := orderstest.Do(t, h, "POST", "/orders", ann, key, body, &again); code != 202 || again.ID != o.ID || !again.PlacedAt.Equal(o.PlacedAt) {
		t.Errorf("resend: %d %s", code, b)
	}
	if code, b := orderstest.Do(t, h, "POST", "/orders", ann, key, `{"product_id":7,"number":4,"unit_price_cents":1250}`, nil); code != 422 {
		t.Errorf("the key again with another order: %d %s", code, b)
	}
	var bobs orders.Order
	orderstest.Do(t, h, "POST", "/orders", bob, key, body, &bobs) // the same key, another user: another order
	if bobs.ID == o.ID || bobs.ID == uuid.Nil {
		t.Errorf("bob's order %s", bobs.ID)
	}

	// The CloudEvent form: source+id is the key; it needs the token too.
	req := event.New()
	req.SetType(events.TypeRequested)
	req.SetSource("/shop/app")
	req.SetID("r-1")
	_ = req.SetData(event.ApplicationJSON, map[string]int64{"product_id": 7, "number": 1, "unit_price_cents": 99})
	if code, b := ceRequest(t, h, req, ""); code != 401 {
		t.Errorf("CloudEvent without a token: %d %s", code, b)
	}
	if code, b := ceRequest(t, h, req, ann); code != 202 || !strings.Contains(b, events.OrderID(1, "ce\x00/shop/app\x00r-1").String()) {
		t.Errorf("CloudEvent: %d %s", code, b)
	}
	ceRequest(t, h, req, ann)

	// Bad input: a 4xx with the reason; nothing stored, nothing sent.
	for _, c := range []struct {
		token, key, body string
		code             int
		want             string
	}{
		{"", "k-2", body, 401, "no token"},
		{ann, "", body, 400, "Idempotency-Key header is required"},
		{ann, strings.Repeat("k", 201), body, 400, "at most 200"},
		{ann, "k-2", `{"product_id":7,"number":0,"unit_price_cents":1250}`, 400, "number 0"},
		{ann, "k-2", `{"product_id":-1,"number":1,"unit_price_cents":0}`, 400, "product_id -1"},
		{ann, "k-2", `{"product_id":7,"number":9223372036854775807,"unit_price_cents":2}`, 400, "over the limit"},
		{ann, "k-2", `{"product_id":7,"number":1,"unit_price_cents":1.5}`, 400, "request body"},
		{ann, "k-2", `{"product_id":7,"number":1,"unit_price_cents":5,"discount":1}`, 400, "unknown field"},
		{ann, "k-2", "{\"product_id\":7,\"number\":1,\"unit_price_cents\":5,\"x\":\"\xff\"}", 400, "UTF-8"},
	} {
		if code, b := orderstest.Do(t, h, "POST", "/orders", c.token, map[string]string{"Idempotency-Key": c.key}, c.body, nil); code != c.code || !strings.Contains(b, c.want) {
			t.Errorf("%.50s key %.10q: %d %s, want %d about %s", c.body, c.key, code, b, c.code, c.want)
		}
	}
	var list []orders.Order
	if code, _ := orderstest.Do(t, h, "GET", "/orders", ann, nil, "", &list); code != 200 || len(list) != 2 {
		t.Errorf("ann's orders: %d %+v", code, list)
	}
	if code, b := orderstest.Do(t, h, "GET", "/orders/"+o.ID.String(), bob, nil, "", nil); code != 404 {
		t.Errorf("bob reads ann's order: %d %s", code, b)
	}
	if code, _ := orderstest.Do(t, h, "GET", "/orders/"+o.ID.String(), "", nil, "", nil); code != 401 {
		t.Errorf("no token: %d", code)
	}

	// Every placement (resends too) put order.placed into the broker, keyed
	// by the order, with the id derived from it: three orders, five events.
	recs := sink.Events(t, 5)
	ids := map[string]int{}
	for _, r := range recs {
		var p events.Placed
		if err := events.Decode(r.Event, events.TypePlaced, &p); err != nil || p.Validate() != nil {
			t.Fatalf("placed %s: %v %v", r.Event.Data(), err, p.Validate())
		}
		if r.Key != p.OrderID.String() || r.Event.ID() != events.PlacedID(p.OrderID) || p.Deadline.Sub(p.PlacedAt) != 5*time.Second {
			t.Errorf("placed %s key %s: %+v", r.Event.ID(), r.Key, p)
		}
		ids[r.Event.ID()]++
	}
	if len(recs) != 5 || len(ids) != 3 || ids[events.PlacedID(o.ID)] != 2 {
		t.Errorf("placed events %v", ids)
	}
}

func TestStatusFromTheOrdersLife(t *testing.T) {
	h, _, token := start(t)
	ann := token(1)
	var o orders.Order
	orderstest.Do(t, h, "POST", "/orders", ann, map[string]string{"Idempotency-Key": "a"}, `{"product_id":1,"number":1,"unit_price_cents":500}`, &o)
	send := func(typ, source, id string, data any) (int, string) {
		e, err := events.New(typ, source, id, o.ID.String(), data)
		if err != nil {
			t.Fatal(err)
		}
		return ceRequest(t, h, e, "")
	}
	decided := events.Decided{OrderID: o.ID, UserID: 1, AmountCents: 500, Reasons: []string{"stock: only 0 left"}, DecidedAt: time.Now().UTC()}
	steps := []func() (int, string){
		func() (int, string) {
			return send(events.TypeValidated, events.SourcePayment, events.ValidatedID(events.CheckPayment, o.ID), events.Validated{OrderID: o.ID, Check: events.CheckPayment, OK: true})
		},
		func() (int, string) {
			return send(events.TypeValidated, events.SourceStock, events.ValidatedID(events.CheckStock, o.ID), events.Validated{OrderID: o.ID, Check: events.CheckStock, Reason: "only 0 left"})
		},
		func() (int, string) {
			return send(events.TypeRejected, events.SourceSaga, events.DecidedID(o.ID), decided)
		},
		func() (int, string) {
			return send(events.TypeSettled, events.SourcePayment, events.SettledID(events.CheckPayment, o.ID), events.Settled{OrderID: o.ID, Check: events.CheckPayment, Action: events.ActionReleased})
		},
	}
	for round := 0; round < 2; round++ { // the second round is a redelivery of everything
		for i, s := range steps {
			if code, b := s(); code != 202 {
				t.Fatalf("round %d step %d: %d %s", round, i, code, b)
			}
		}
	}
	// A late, contradictory decision changes nothing: a decision is final.
	send(events.TypeConfirmed, events.SourceSaga, "other", events.Decided{OrderID: o.ID, UserID: 1, AmountCents: 500, DecidedAt: time.Now()})
	var got orders.Order
	orderstest.Do(t, h, "GET", "/orders/"+o.ID.String(), ann, nil, "", &got)
	var names []string
	for _, s := range got.Steps {
		names = append(names, s.Step)
	}
	if got.Status != "rejected" || len(got.Reasons) != 1 || got.DecidedAt == nil || len(got.Steps) != 5 {
		t.Errorf("order after its life: %+v (steps %v)", got, names)
	}

	// A decision about an order not stored yet: 503, delivered again later.
	other := uuid.New()
	e, _ := events.New(events.TypeConfirmed, events.SourceSaga, events.DecidedID(other), other.String(),
		events.Decided{OrderID: other, UserID: 1, AmountCents: 1, DecidedAt: time.Now()})
	if code, b := ceRequest(t, h, e, ""); code != 503 {
		t.Errorf("decision before the order: %d %s", code, b)
	}
	// Malformed events: 400, never retried.
	for _, c := range []struct {
		typ  string
		data any
	}{
		{events.TypeValidated, map[string]any{"order_id": o.ID, "check": "luck", "ok": true}},
		{events.TypeConfirmed, map[string]any{"order_id": o.ID, "user_id": 1, "amount_cents": -5}},
		{events.TypeSettled, map[string]any{"order_id": o.ID, "check": "stock", "action": "shipped", "extra": 1}},
		{"dev.jobflow.other", map[string]any{}},
	} {
		e, _ := events.New(c.typ, "/x", "bad", "k", c.data)
		if code, b := ceRequest(t, h, e, ""); code != 400 {
			t.Errorf("%s %v: %d %s", c.typ, c.data, code, b)
		}
	}
}
