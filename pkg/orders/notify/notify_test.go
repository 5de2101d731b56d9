package notify_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/notify"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
)

func start(t *testing.T) (http.Handler, *auth.Tokens) {
	t.Helper()
	t.Setenv("JOBFLOW_NOTIFY_URL", testenv.PostgresDB(t))
	t.Setenv("ORDERS_JWT_KEY", orderstest.JWTKey)
	f := notify.NewFunction()
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	tokens, err := auth.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(f.Handle), tokens
}

func deliver(t *testing.T, h http.Handler, e event.Event) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://notify/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	w := &codeWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	return w.code
}

type codeWriter struct {
	h    http.Header
	code int
}

func (w *codeWriter) Header() http.Header         { return w.h }
func (w *codeWriter) WriteHeader(c int)           { w.code = c }
func (w *codeWriter) Write(b []byte) (int, error) { return len(b), nil }

func user(t *testing.T, u events.UserChanged) event.Event {
	e, err := events.NewUserChanged(u)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func decision(t *testing.T, order uuid.UUID, user int64, reasons ...string) event.Event {
	e, err := events.NewDecided(events.Decided{OrderID: order, UserID: user, AmountCents: 1999, Reasons: reasons, DecidedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func messages(t *testing.T, h http.Handler, tokens *auth.Tokens, user int64) []notify.Notification {
	t.Helper()
	tok, _ := tokens.Issue(auth.Claims{UserID: user})
	var out []notify.Notification
	if code, b := orderstest.Do(t, h, "GET", "/notifications", tok, nil, "", &out); code != 200 {
		t.Fatalf("GET /notifications: %d %s", code, b)
	}
	return out
}

// TestOneMessagePerDecisionEnrichedByName: a decision whose customer is
// known is written at once; one whose customer has not arrived waits and
// is written when the customer does; redeliveries write nothing more.
func TestOneMessagePerDecisionEnrichedByName(t *testing.T) {
	h, tokens := start(t)
	ann := events.UserChanged{UserID: 1, Username: "ann", FirstName: "Ann", LastName: "Lee", Email: "ann@example.com", Version: 1}
	if c := deliver(t, h, user(t, ann)); c != 202 {
		t.Fatalf("user.changed: %d", c)
	}
	o1, o2, o3 := uuid.New(), uuid.New(), uuid.New()
	for range 2 {
		if c := deliver(t, h, decision(t, o1, 1)); c != 202 {
			t.Fatalf("confirmed: %d", c)
		}
		deliver(t, h, decision(t, o2, 1, "payment: balance 10 cents, order 1999 cents"))
		deliver(t, h, decision(t, o3, 2)) // bob is not known yet
	}
	got := messages(t, h, tokens, 1)
	if len(got) != 2 {
		t.Fatalf("ann's messages: %+v", got)
	}
	for _, m := range got {
		if m.Text == nil || !strings.HasPrefix(*m.Text, "Dear Ann Lee") || *m.Email != "ann@example.com" {
			t.Errorf("message %+v", m)
		}
		if m.OrderID == o2 && (m.Decision != "rejected" || !strings.Contains(*m.Text, "balance 10 cents")) {
			t.Errorf("rejection %s", *m.Text)
		}
	}
	bob := messages(t, h, tokens, 2)
	if len(bob) != 1 || bob[0].Text != nil {
		t.Fatalf("bob's message before bob arrived: %+v", bob)
	}
	deliver(t, h, user(t, events.UserChanged{UserID: 2, Username: "bob", FirstName: "Bob", LastName: "Ray", Email: "bob@example.com", Version: 2}))
	deliver(t, h, user(t, events.UserChanged{UserID: 2, Username: "bob", FirstName: "Robert", LastName: "Ray", Email: "old@example.com", Version: 1})) // older: ignored
	bob = messages(t, h, tokens, 2)
	if len(bob) != 1 || bob[0].Text == nil || !strings.HasPrefix(*bob[0].Text, "Dear Bob Ray, your order "+o3.String()+" is confirmed: 19.99") {
		t.Fatalf("bob's message once bob arrived: %+v", bob)
	}
	if len(messages(t, h, tokens, 3)) != 0 {
		t.Error("a user without orders has messages")
	}
	if code, _ := orderstest.Do(t, h, "GET", "/notifications", "", nil, "", nil); code != 401 {
		t.Errorf("no token: %d", code)
	}
	bad, _ := events.New(events.TypeConfirmed, events.SourceSaga, "x", "k", map[string]any{"order_id": o1, "user_id": 0})
	if c := deliver(t, h, bad); c != 400 {
		t.Errorf("malformed decision: %d", c)
	}
}

// TestDecisionAndCustomerAtOnce: a decision and its customer arriving at
// the same moment still make a written message (neither misses the other).
func TestDecisionAndCustomerAtOnce(t *testing.T) {
	h, tokens := start(t)
	const users = 40
	var wg sync.WaitGroup
	for u := int64(1); u <= users; u++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			deliver(t, h, decision(t, uuid.New(), u))
		}()
		go func() {
			defer wg.Done()
			deliver(t, h, user(t, events.UserChanged{UserID: u, Username: "u", FirstName: "F", LastName: "L", Email: "u@example.com", Version: 1}))
		}()
	}
	wg.Wait()
	for u := int64(1); u <= users; u++ {
		if m := messages(t, h, tokens, u); len(m) != 1 || m[0].Text == nil {
			t.Errorf("user %d: %+v", u, m)
		}
	}
}
