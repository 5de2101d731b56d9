package knative

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testOrders: the orders saga on the cluster. A new user registers and
// logs in (users), places an order with an Idempotency-Key twice (orders:
// one order), and the order is decided through the orders Broker and its
// Triggers (payment, stock, delivery, saga: with no balance nor stock it is
// rejected with reasons) and notify writes one message addressed by name
// (the customer from the compacted orders-users topic).
func testOrders(ctx context.Context, t *testing.T, c *Cluster) {
	user := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1_000_000_000)
	call := func(ksvc, method, path, token, key string, body any, into any) int {
		t.Helper()
		h := http.Header{"Content-Type": {"application/json"}}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		if key != "" {
			h.Set("Idempotency-Key", key)
		}
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		var status int
		err := Eventually(ctx, 2*time.Minute, 2*time.Second, func() error {
			var out []byte
			var err error
			status, _, out, err = c.Do(ctx, ksvc, method, path, h, b)
			if err != nil || status >= 500 {
				return fmt.Errorf("%s %s: %d %s %v", method, path, status, out, err)
			}
			if into != nil && status < 300 {
				return json.Unmarshal(out, into)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	if s := call("users", http.MethodPost, "/users", "", "", map[string]string{"username": user, "password": "e2e-secret-1",
		"first_name": "Eve", "last_name": "Tester", "email": user + "@example.com"}, nil); s != http.StatusCreated {
		t.Fatalf("register: %d", s)
	}
	var login struct{ Token string }
	if s := call("users", http.MethodPost, "/login", "", "", map[string]string{"username": user, "password": "e2e-secret-1"}, &login); s != http.StatusOK {
		t.Fatalf("login: %d", s)
	}
	if s := call("orders", http.MethodGet, "/orders", "", "", nil, nil); s != http.StatusUnauthorized {
		t.Errorf("orders without a token: %d", s)
	}
	order := map[string]int64{"product_id": 999999, "number": 1, "unit_price_cents": 100}
	var first, again struct {
		OrderID string `json:"order_id"`
	}
	call("orders", http.MethodPost, "/orders", login.Token, "e2e-1", order, &first)
	call("orders", http.MethodPost, "/orders", login.Token, "e2e-1", order, &again)
	if first.OrderID == "" || first.OrderID != again.OrderID {
		t.Fatalf("a resent order is another order: %q %q", first.OrderID, again.OrderID)
	}
	err := Eventually(ctx, 3*time.Minute, 2*time.Second, func() error {
		var o struct {
			Status  string
			Reasons []string
		}
		call("orders", http.MethodGet, "/orders/"+first.OrderID, login.Token, "", nil, &o)
		if o.Status == "pending" || o.Status == "" {
			return fmt.Errorf("order %s still %q", first.OrderID, o.Status)
		}
		var msgs []struct {
			OrderID string `json:"order_id"`
			Text    *string
		}
		call("notify", http.MethodGet, "/notifications", login.Token, "", nil, &msgs)
		if len(msgs) != 1 || msgs[0].OrderID != first.OrderID || msgs[0].Text == nil || !strings.HasPrefix(*msgs[0].Text, "Dear Eve Tester") {
			return fmt.Errorf("messages %+v", msgs)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
