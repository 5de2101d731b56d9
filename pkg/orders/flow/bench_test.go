package flow_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/orders/events"
)

// TestOrdersBench is the orders part of `make bench` (scripts/bench.sh sets
// JOBFLOW_BENCH_ORDERS; it is skipped otherwise): on the engine with the
// participants and the saga it measures
//
//   - capacity: orders/s decided when BENCH_ORDERS_CAPACITY orders are sent
//     into the orders Broker at once by 32 senders;
//   - placed → decided latency p50/p99 (the decision's record time minus the
//     moment the order was sent) at 25, 50 and 75 % of that capacity, each
//     for BENCH_ORDERS_SECONDS, open loop;
//   - the sequential baseline in the same run: the same functions called one
//     after another (payment, then stock, then delivery, each answering
//     order.validated), as the older synchronous shop did, at 25 % of capacity.
func TestOrdersBench(t *testing.T) {
	if os.Getenv("JOBFLOW_BENCH_ORDERS") == "" {
		t.Skip("a benchmark: scripts/bench.sh runs it with JOBFLOW_BENCH_ORDERS=1")
	}
	capacityOrders := envInt("BENCH_ORDERS_CAPACITY", 3000)
	seconds := envInt("BENCH_ORDERS_SECONDS", 5)
	t.Setenv("DELIVERY_SLOTS", "336") // the most; with 40 couriers 13,440 orders: couriers are not what is measured
	c := start(t, newConfig(t))
	const users = 20
	deposits := map[int64]int64{}
	for u := int64(1); u <= users; u++ {
		deposits[u] = events.MaxAmountCents
	}
	plenty, _ := shop(t, c, 40, deposits)
	decided := watchDecisions(t, c)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	order := func() (uuid.UUID, event.Event) {
		p, e := placed(t, time.Now().UTC(), seq.Add(1)%users+1, plenty.ID, 1, plenty.PriceCents)
		return p.OrderID, e
	}

	// Capacity.
	ids := make([]uuid.UUID, capacityOrders)
	evs := make([]event.Event, capacityOrders)
	for i := range ids {
		ids[i], evs[i] = order()
	}
	begin := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(evs)); i = next.Add(1) - 1 {
				decided.sent(ids[i], time.Now())
				if code := send(client, c.broker(), evs[i]); code != http.StatusAccepted {
					t.Errorf("broker answered %d", code)
				}
			}
		}()
	}
	wg.Wait()
	last := decided.wait(t, ids, 5*time.Minute)
	capacity := float64(capacityOrders) / last.Sub(begin).Seconds()
	t.Logf("capacity: %d orders decided in %.2fs: %.0f orders/s", capacityOrders, last.Sub(begin).Seconds(), capacity)
	fmt.Printf("orders capacity: %.0f orders/s (%d orders, 32 senders)\n", capacity, capacityOrders)

	// Latency at 25, 50, 75 % of capacity.
	for _, pct := range []int{25, 50, 75} {
		rate := capacity * float64(pct) / 100
		ids := openLoop(t, rate, time.Duration(seconds)*time.Second, func(at time.Time) uuid.UUID {
			id, e := order()
			decided.sent(id, at)
			if code := send(client, c.broker(), e); code != http.StatusAccepted {
				t.Errorf("broker answered %d", code)
			}
			return id
		})
		decided.wait(t, ids, 5*time.Minute)
		p50, p99 := percentiles(decided.latencies(ids))
		fmt.Printf("orders scatter-gather at %d%% (%.0f/s, %d orders): placed → decided p50 %s p99 %s\n", pct, rate, len(ids), p50, p99)
	}

	// The sequential baseline: payment, then stock, then delivery.
	rate := capacity / 4
	var mu sync.Mutex
	var lat []time.Duration
	openLoop(t, rate, time.Duration(seconds)*time.Second, func(at time.Time) uuid.UUID {
		id, e := order()
		for _, fn := range []string{"payment", "stock", "delivery"} {
			if code := send(client, c.url(fn)+"/", e); code != http.StatusOK {
				t.Errorf("%s answered %d", fn, code)
				return id
			}
		}
		mu.Lock()
		lat = append(lat, time.Since(at))
		mu.Unlock()
		return id
	})
	p50, p99 := percentiles(lat)
	fmt.Printf("orders sequential baseline at 25%% (%.0f/s, %d orders): payment → stock → delivery p50 %s p99 %s\n", rate, len(lat), p50, p99)
}

// openLoop calls do at rate per second for d (each call in its own
// goroutine, at its planned time) and returns what the calls returned.
func openLoop(t *testing.T, rate float64, d time.Duration, do func(at time.Time) uuid.UUID) []uuid.UUID {
	t.Helper()
	n := int(rate * d.Seconds())
	if n < 1 {
		n = 1
	}
	interval := time.Duration(float64(time.Second) / rate)
	ids := make([]uuid.UUID, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() { defer wg.Done(); ids[i] = do(at) }()
	}
	wg.Wait()
	return ids
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2].Round(time.Millisecond / 10), ds[len(ds)*99/100].Round(time.Millisecond / 10)
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n <= 0 {
		return def
	}
	return n
}

// decisions follows the orders Broker's topic: when each order was sent,
// and the record time of its decision.
type decisions struct {
	mu      sync.Mutex
	sentAt  map[uuid.UUID]time.Time
	decided map[uuid.UUID]time.Time
}

func (d *decisions) sent(id uuid.UUID, at time.Time) {
	d.mu.Lock()
	d.sentAt[id] = at
	d.mu.Unlock()
}

// wait waits until every order of ids is decided and returns the last decision's time.
func (d *decisions) wait(t *testing.T, ids []uuid.UUID, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d.mu.Lock()
		var last time.Time
		missing := 0
		for _, id := range ids {
			at, ok := d.decided[id]
			if !ok {
				missing++
			} else if at.After(last) {
				last = at
			}
		}
		d.mu.Unlock()
		if missing == 0 {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders not decided after %s", missing, len(ids), within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *decisions) latencies(ids []uuid.UUID) []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []time.Duration
	for _, id := range ids {
		out = append(out, d.decided[id].Sub(d.sentAt[id]))
	}
	return out
}

func watchDecisions(t *testing.T, c *cluster) *decisions {
	t.Helper()
	d := &decisions{sentAt: map[uuid.UUID]time.Time{}, decided: map[uuid.UUID]time.Time{}}
	topic := ""
	for _, b := range c.eng.Plan().Brokers {
		if b.Name == "orders" {
			topic = b.Topic
		}
	}
	cons, err := sarama.NewConsumer([]string{fmt.Sprintf("127.0.0.1:%d", c.cfg.KafkaPort)}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	parts, err := cons.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for m := range pc.Messages() {
				e, err := binding.ToEvent(context.Background(), kafka_sarama.NewMessageFromConsumerMessage(m))
				if err != nil || (e.Type() != events.TypeConfirmed && e.Type() != events.TypeRejected) {
					continue
				}
				id, err := uuid.Parse(string(m.Key))
				if err != nil {
					continue
				}
				d.mu.Lock()
				if _, seen := d.decided[id]; !seen {
					d.decided[id] = m.Timestamp
				}
				d.mu.Unlock()
			}
		}()
	}
	return d
}
