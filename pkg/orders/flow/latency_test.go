package flow_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestOrderDecidedBeforeItsDeadline: when payment, stock and delivery all
// answer, the saga decides an order as soon as the last answer arrives, not
// when the deadline sweep finds it. The saga's deadline here is a minute, so
// an order decided only by the sweep (or by anything else that waits for a
// timeout) fails; the bound is generous for a loaded machine, yet far below it.
func TestOrderDecidedBeforeItsDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the engine")
	}
	t.Setenv("ORDERS_DEADLINE", "1m")
	c := start(t, newConfig(t))
	plenty, _ := shop(t, c, 4, map[int64]int64{2: 100_000})
	decided := watchDecisions(t, c)
	client := &http.Client{Timeout: 30 * time.Second}
	const n = 5
	var ids []uuid.UUID
	for range n {
		p, e := placed(t, time.Now().UTC(), 2, plenty.ID, 1, plenty.PriceCents)
		ids = append(ids, p.OrderID)
		decided.sent(p.OrderID, time.Now())
		if code := send(client, c.broker(), e); code != http.StatusAccepted {
			t.Fatalf("broker answered %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	decided.wait(t, ids, 2*time.Minute)
	for i, l := range decided.latencies(ids) {
		t.Logf("order %s: placed → decided %s", ids[i], l)
		if l > 20*time.Second {
			t.Errorf("order %s decided %s after it was placed: it waited for something (its deadline is a minute)", ids[i], l)
		}
	}
	got := sagaStatus(t, c)
	for _, id := range ids {
		if got[id][0] != "confirmed" {
			t.Errorf("order %s: %v, want confirmed", id, got[id])
		}
	}
}
