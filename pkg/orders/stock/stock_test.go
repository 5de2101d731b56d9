package stock_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
	"github.com/jobflow/jobflow/pkg/orders/stock"
)

// TestStock: admin-only writes, the checks of an order (unknown product,
// price mismatch, out of stock), ship and release, conservation.
func TestStock(t *testing.T) {
	f, _ := orderstest.StartParticipant(t, stock.Spec)
	h := f.Handle
	admin, user := orderstest.Token(t, 1, true), orderstest.Token(t, 2, false)

	if code, _ := orderstest.Call(t, h, "POST", "/products", user, `{"name":"mug","price_cents":500,"in_stock":3}`, nil); code != 403 {
		t.Fatalf("non-admin create: %d", code)
	}
	if code, _ := orderstest.Call(t, h, "GET", "/products", "", nil, nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	for _, body := range []string{`{"name":"","price_cents":5}`, `{"name":"x","price_cents":0}`, `{"name":"x"}`, `{"name":"x","price_cents":5,"in_stock":-1}`, "{\"name\":\"\xff\",\"price_cents\":5}"} {
		if code, _ := orderstest.Call(t, h, "POST", "/products", admin, body, nil); code != 400 {
			t.Errorf("create %s: %d", body, code)
		}
	}
	var mug stock.Product
	if code, body := orderstest.Call(t, h, "POST", "/products", admin, `{"name":"mug","price_cents":500,"in_stock":3}`, &mug); code != 201 || mug.InStock != 3 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := orderstest.Call(t, h, "PATCH", fmt.Sprintf("/products/%d", mug.ID), user, `{"price_cents":1}`, nil); code != 403 {
		t.Fatalf("non-admin update: %d", code)
	}
	if code, _ := orderstest.Call(t, h, "PATCH", fmt.Sprintf("/products/%d", mug.ID), admin, `{"in_stock":100}`, nil); code != 400 {
		t.Fatalf("in_stock set by PATCH: %d", code)
	}
	if code, _ := orderstest.Call(t, h, "GET", "/products/999", user, nil, nil); code != 404 {
		t.Fatalf("unknown product: %d", code)
	}

	check := func(p events.Placed, wantOK bool, reason string) {
		t.Helper()
		_, reply := orderstest.Send(t, h, orderstest.PlacedEvent(t, p))
		v := orderstest.Validated(t, reply)
		if v.OK != wantOK || !strings.Contains(v.Reason, reason) || v.Check != events.CheckStock {
			t.Fatalf("order %+v: %+v, want ok %v %q", p, v, wantOK, reason)
		}
	}
	check(orderstest.Placed(2, 999, 1, 500), false, "unknown product")
	check(orderstest.Placed(2, mug.ID, 1, 499), false, "price mismatch")
	check(orderstest.Placed(2, mug.ID, 4, 500), false, "out of stock")
	a, b := orderstest.Placed(2, mug.ID, 2, 500), orderstest.Placed(2, mug.ID, 1, 500)
	check(a, true, "")
	check(b, true, "")
	check(orderstest.Placed(2, mug.ID, 1, 500), false, "out of stock")

	_, reply := orderstest.Send(t, h, orderstest.DecidedEvent(t, a))
	if s := orderstest.Settled(t, reply); s.Action != events.ActionShipped {
		t.Fatalf("confirmed: %+v", s)
	}
	_, reply = orderstest.Send(t, h, orderstest.DecidedEvent(t, b, "payment: insufficient funds"))
	if s := orderstest.Settled(t, reply); s.Action != events.ActionReleased {
		t.Fatalf("rejected: %+v", s)
	}
	orderstest.Send(t, h, orderstest.DecidedEvent(t, b, "payment: insufficient funds")) // again: nothing more
	var got stock.Product
	orderstest.Call(t, h, "GET", fmt.Sprintf("/products/%d", mug.ID), user, nil, &got)
	if got.InStock != 1 || got.Received != 3 {
		t.Fatalf("after ship 2 and release 1: %+v", got)
	}
	if code, _ := orderstest.Call(t, h, "POST", fmt.Sprintf("/products/%d/restock", mug.ID), admin, `{"number":10}`, &got); code != 200 || got.InStock != 11 || got.Received != 13 {
		t.Fatalf("restock: %d %+v", code, got)
	}
}
