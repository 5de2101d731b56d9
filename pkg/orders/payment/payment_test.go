package payment_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
	"github.com/jobflow/jobflow/pkg/orders/payment"
)

func balance(t *testing.T, h http.HandlerFunc, token string) payment.Balance {
	t.Helper()
	var b payment.Balance
	if code, body := orderstest.Call(t, h, "GET", "/balance", token, nil, &b); code != 200 {
		t.Fatalf("GET /balance: %d %s", code, body)
	}
	if b.DepositedCents != b.BalanceCents+b.ReservedCents+b.ChargedCents {
		t.Fatalf("money not conserved: %+v", b)
	}
	return b
}

func deposit(t *testing.T, h http.HandlerFunc, token string, cents int64, key string) {
	t.Helper()
	req := func(w http.ResponseWriter, r *http.Request) {
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		h(w, r)
	}
	if code, body := orderstest.Call(t, req, "POST", "/balance/deposit", token, map[string]int64{"amount_cents": cents}, nil); code != 200 {
		t.Fatalf("deposit: %d %s", code, body)
	}
}

// TestPaymentSaga: a user's own deposits (idempotent with a key), reserves
// that hold money, charges and releases on the decision, refusals that
// hold nothing, and every redelivery changing nothing.
func TestPaymentSaga(t *testing.T) {
	f, _ := orderstest.StartParticipant(t, payment.Spec)
	h := f.Handle
	ann, bob := orderstest.Token(t, 1, false), orderstest.Token(t, 2, false)

	// Security and bad input.
	if code, _ := orderstest.Call(t, h, "GET", "/balance", "", nil, nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := orderstest.Call(t, h, "GET", "/balance", "garbage", nil, nil); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	for _, body := range []string{`{"amount_cents":0}`, `{"amount_cents":-5}`, `{"amount_cents":1e30}`, `{"amount":5}`, `{"amount_cents":5}{}`, "{\"amount_cents\":5,\"x\":\"\xff\"}", `{}`} {
		if code, reason := orderstest.Call(t, h, "POST", "/balance/deposit", ann, body, nil); code != 400 || !strings.Contains(reason, "error") {
			t.Errorf("deposit %q: %d %s", body, code, reason)
		}
	}
	deposit(t, h, ann, 1000, "d1")
	deposit(t, h, ann, 1000, "d1") // a resend
	deposit(t, h, ann, 500, "")
	deposit(t, h, bob, 100, "d1") // bob's own key space
	if b := balance(t, h, ann); b.BalanceCents != 1500 || b.DepositedCents != 1500 {
		t.Fatalf("ann: %+v", b)
	}
	if b := balance(t, h, bob); b.BalanceCents != 100 || b.UserID != 2 {
		t.Fatalf("bob sees %+v", b)
	}

	// Reserve 1200 of ann's 1500: ok; a duplicate answers the same and holds nothing more.
	o1 := orderstest.Placed(1, 9, 4, 300)
	placed := orderstest.PlacedEvent(t, o1)
	code, reply := orderstest.Send(t, h, placed)
	v := orderstest.Validated(t, reply)
	if code != 200 || !v.OK || v.Check != events.CheckPayment || reply.ID() != events.ValidatedID(events.CheckPayment, o1.OrderID) ||
		reply.Extensions()[events.PartitionKey] != o1.OrderID.String() {
		t.Fatalf("reserve: %d %+v %s", code, v, reply)
	}
	if _, again := orderstest.Send(t, h, placed); again == nil || string(again.Data()) != string(reply.Data()) || again.ID() != reply.ID() {
		t.Fatalf("duplicate answered %v", again)
	}
	if b := balance(t, h, ann); b.BalanceCents != 300 || b.ReservedCents != 1200 {
		t.Fatalf("after reserve: %+v", b)
	}
	// A second order of 600 does not fit: refused with a reason, nothing held.
	o2 := orderstest.Placed(1, 9, 2, 300)
	_, reply = orderstest.Send(t, h, orderstest.PlacedEvent(t, o2))
	if v := orderstest.Validated(t, reply); v.OK || !strings.Contains(v.Reason, "insufficient funds") {
		t.Fatalf("over balance: %+v", v)
	}
	if b := balance(t, h, ann); b.BalanceCents != 300 || b.ReservedCents != 1200 {
		t.Fatalf("a refusal held money: %+v", b)
	}
	// Confirmed: charged, once, however often it comes.
	for range 3 {
		_, reply = orderstest.Send(t, h, orderstest.DecidedEvent(t, o1))
		if s := orderstest.Settled(t, reply); s.Action != events.ActionCharged {
			t.Fatalf("confirmed: %+v", s)
		}
	}
	// Rejected o2 had nothing reserved.
	_, reply = orderstest.Send(t, h, orderstest.DecidedEvent(t, o2, "payment: insufficient funds"))
	if s := orderstest.Settled(t, reply); s.Action != events.ActionNone {
		t.Fatalf("rejected refused order: %+v", s)
	}
	if b := balance(t, h, ann); b.BalanceCents != 300 || b.ChargedCents != 1200 || b.ReservedCents != 0 {
		t.Fatalf("after charge: %+v", b)
	}

	// A rejection releases the reserve (compensation).
	o3 := orderstest.Placed(1, 9, 1, 200)
	orderstest.Send(t, h, orderstest.PlacedEvent(t, o3))
	_, reply = orderstest.Send(t, h, orderstest.DecidedEvent(t, o3, "stock: out of stock"))
	if s := orderstest.Settled(t, reply); s.Action != events.ActionReleased {
		t.Fatalf("rejected: %+v", s)
	}
	if b := balance(t, h, ann); b.BalanceCents != 300 || b.ReservedCents != 0 {
		t.Fatalf("after release: %+v", b)
	}
	// A decision that overtakes its order: the late order.placed holds nothing.
	o4 := orderstest.Placed(1, 9, 1, 100)
	orderstest.Send(t, h, orderstest.DecidedEvent(t, o4, "timeout"))
	_, reply = orderstest.Send(t, h, orderstest.PlacedEvent(t, o4))
	if v := orderstest.Validated(t, reply); v.OK || !strings.Contains(v.Reason, "decided") {
		t.Fatalf("late placed: %+v", v)
	}
	if b := balance(t, h, ann); b.BalanceCents != 300 {
		t.Fatalf("late placed held money: %+v", b)
	}

	// Concurrent orders and their duplicates never overdraw.
	deposit(t, h, bob, 900, "d2") // bob has 1000
	var wg sync.WaitGroup
	oks := make(chan bool, 40)
	for i := range 20 {
		p := orderstest.Placed(2, 9, 1, 100+int64(i%2))
		e := orderstest.PlacedEvent(t, p)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, r := orderstest.Send(t, h, e)
				oks <- orderstest.Validated(t, r).OK
			}()
		}
	}
	wg.Wait()
	close(oks)
	n := 0
	for ok := range oks {
		if ok {
			n++
		}
	}
	b := balance(t, h, bob)
	if b.BalanceCents < 0 || b.ReservedCents > 1000 || n%2 != 0 || b.ReservedCents+b.BalanceCents != 1000 {
		t.Fatalf("concurrent: %d ok answers, %+v", n, b)
	}

	// Bad events: 400 and nothing changes.
	bad := orderstest.PlacedEvent(t, o1)
	bad.SetID("other")
	bad.DataEncoded = []byte(`{"order_id":"x"}`)
	if code, _ := orderstest.Send(t, h, bad); code != 400 {
		t.Fatalf("malformed event: %d", code)
	}
	bad.SetType("dev.other")
	if code, _ := orderstest.Send(t, h, bad); code != 400 {
		t.Fatalf("other type: %d", code)
	}
}

// TestOnlyTheSagaDecides: a confirmation from another source is refused
// (400) and charges nothing.
func TestOnlyTheSagaDecides(t *testing.T) {
	f, _ := orderstest.StartParticipant(t, payment.Spec)
	h := f.Handle
	ann := orderstest.Token(t, 1, false)
	deposit(t, h, ann, 1000, "")
	o := orderstest.Placed(1, 9, 1, 300)
	orderstest.Send(t, h, orderstest.PlacedEvent(t, o))
	forged := orderstest.DecidedEvent(t, o)
	forged.SetSource("/me")
	if code, _ := orderstest.Send(t, h, forged); code != 400 {
		t.Fatalf("forged decision: %d", code)
	}
	if b := balance(t, h, ann); b.ReservedCents != 300 || b.ChargedCents != 0 {
		t.Fatalf("after a forged decision: %+v", b)
	}
}
