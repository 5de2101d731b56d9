// Package orderstest helps the orders domain's tests: it starts a
// participant function on a fresh database of the test PostgreSQL server,
// issues users' tokens, sends CloudEvents and API calls to a function and
// builds the events of an order.
package orderstest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/participant"
)

// JWTKey is the tests' signing key.
const JWTKey = "orderstest-0123456789abcdef-0123456789"

// Tokens issues tokens with JWTKey.
func Tokens(t testing.TB) *auth.Tokens {
	t.Helper()
	tk, err := auth.New(auth.Config{Key: JWTKey, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// Token is a valid token for user (admin or not).
func Token(t testing.TB, user int64, admin bool) string {
	t.Helper()
	s, err := Tokens(t).Issue(auth.Claims{UserID: user, Username: "u" + uuid.NewString()[:8], Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartParticipant starts spec's function on a fresh database and returns
// it with that database's URL; it stops when the test ends.
func StartParticipant(t testing.TB, spec participant.Spec) (*participant.Function, string) {
	t.Helper()
	url := testenv.PostgresDB(t)
	t.Setenv(spec.URLEnv, url)
	t.Setenv("ORDERS_JWT_KEY", JWTKey)
	f := participant.NewFunction(spec)
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	return f, url
}

// Send POSTs e in binary mode to h and returns the status and the reply event.
func Send(t testing.TB, h http.HandlerFunc, e event.Event) (int, *event.Event) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h(w, req)
	if w.Code != http.StatusOK {
		return w.Code, nil
	}
	msg := cehttp.NewMessage(w.Header(), io.NopCloser(w.Body))
	reply, err := binding.ToEvent(context.Background(), msg)
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	return w.Code, reply
}

// Call sends an API request with token (none when empty) and a JSON body
// (none when nil), decodes a 2xx answer into into, and returns the status
// and the raw body.
func Call(t testing.TB, h http.HandlerFunc, method, path, token string, body any, into any) (int, string) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h(w, req)
	if into != nil && w.Code/100 == 2 {
		if err := json.Unmarshal(w.Body.Bytes(), into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, w.Body.String())
		}
	}
	return w.Code, w.Body.String()
}

// Placed is an order placed now for user: number × unit price of product.
func Placed(user, product, number, unitPrice int64) events.Placed {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return events.Placed{OrderID: uuid.New(), UserID: user, ProductID: product, Number: number,
		UnitPriceCents: unitPrice, AmountCents: number * unitPrice, PlacedAt: now, Deadline: now.Add(5 * time.Second)}
}

// PlacedEvent is p's order.placed.
func PlacedEvent(t testing.TB, p events.Placed) event.Event {
	t.Helper()
	e, err := events.NewPlaced(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// DecidedEvent is the saga's decision on p: confirmed without reasons.
func DecidedEvent(t testing.TB, p events.Placed, reasons ...string) event.Event {
	t.Helper()
	e, err := events.NewDecided(events.Decided{OrderID: p.OrderID, UserID: p.UserID, AmountCents: p.AmountCents, Reasons: reasons, DecidedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Validated decodes an order.validated reply.
func Validated(t testing.TB, e *event.Event) events.Validated {
	t.Helper()
	var v events.Validated
	if e == nil {
		t.Fatal("no reply")
	}
	if err := events.Decode(*e, events.TypeValidated, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Settled decodes an order.settled reply.
func Settled(t testing.TB, e *event.Event) events.Settled {
	t.Helper()
	var s events.Settled
	if e == nil {
		t.Fatal("no reply")
	}
	if err := events.Decode(*e, events.TypeSettled, &s); err != nil {
		t.Fatal(err)
	}
	return s
}
