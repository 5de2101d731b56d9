package trigger_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/testenv"
)

// keyed are n events e-<i> keyed k<i%keys>, plus unkeyed events u-<j>.
func keyed(n, keys, unkeyed int) []event.Event {
	var out []event.Event
	for i := range n {
		out = append(out, newEvent(fmt.Sprintf("e-%d", i), "com.example.a", fmt.Sprintf("k%d", i%keys)))
	}
	for j := range unkeyed {
		out = append(out, newEvent(fmt.Sprintf("u-%d", j), "com.example.a", ""))
	}
	return out
}

// inOrder fails unless, for each group of requests (by group), the
// events arrived in the order of their offsets.
func inOrder(t *testing.T, reqs []request, group func(request) string) {
	t.Helper()
	last := map[string]int{}
	for _, r := range reqs {
		g := group(r)
		off, _ := strconv.Atoi(fmt.Sprint(r.Event.Extensions()["knativekafkaoffset"]))
		if prev, ok := last[g]; ok && off < prev {
			t.Fatalf("%s: offset %d delivered after %d: order broken", g, off, prev)
		}
		last[g] = off
	}
}

func byPartition(r request) string { return fmt.Sprint(r.Event.Extensions()["knativekafkapartition"]) }

func byPartitionKey(r request) string {
	return byPartition(r) + "/" + fmt.Sprint(r.Event.Extensions()["partitionkey"])
}

func slow(d time.Duration) func(*event.Event, int) answer {
	return func(*event.Event, int) answer { return answer{status: 202, delay: d} }
}

// TestEKBOrderedIsOneAtATimePerPartitionInOrder: kafka.eventing.knative.dev/
// delivery.order: ordered.
func TestEKBOrderedIsOneAtATimePerPartitionInOrder(t *testing.T) {
	brokers := testenv.Kafka(t, 3, topic)
	publish(t, brokers, keyed(60, 6, 0)...)
	sub := newSubscriber(t, slow(2*time.Millisecond))
	tr := startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL, ordered: true})[0]
	waitFor(t, "60 deliveries", func() bool { return tr.Stats().Delivered == 60 })
	inOrder(t, sub.all(), byPartition)
	if p := sub.peak.Load(); p > 3 {
		t.Fatalf("%d in flight on 3 partitions", p)
	}
}

// TestEKBUnorderedIsParallelWithinAPartition: the default order of a
// Trigger (unordered) delivers records of one partition in parallel.
func TestEKBUnorderedIsParallelWithinAPartition(t *testing.T) {
	brokers := testenv.Kafka(t, 1, topic)
	publish(t, brokers, keyed(40, 1, 0)...)
	sub := newSubscriber(t, slow(30*time.Millisecond))
	tr := startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL, max: 8})[0]
	waitFor(t, "40 deliveries", func() bool { return tr.Stats().Delivered == 40 })
	if p := sub.peak.Load(); p < 2 || p > 8 {
		t.Fatalf("peak in flight %d on one partition: want parallel, capped at 8", p)
	}
}

// TestJobflowByKeyKeepsEachKeyInOrderWhileKeysGoInParallel:
// jobflow.dev/delivery.order: key. The same key never has two requests in
// flight and arrives in order; different keys of one partition overlap.
// Unkeyed events share the empty key: in order among themselves.
func TestJobflowByKeyKeepsEachKeyInOrderWhileKeysGoInParallel(t *testing.T) {
	brokers := testenv.Kafka(t, 1, topic)
	publish(t, brokers, keyed(40, 4, 8)...)
	sub := newSubscriber(t, slow(20*time.Millisecond))
	tr := startTriggers(t, brokers, triggerCfg{group: "g", target: sub.srv.URL, byKey: true, max: 8})[0]
	waitFor(t, "48 deliveries", func() bool { return tr.Stats().Delivered == 48 })
	if sub.overlap.Load() {
		t.Fatal("two events of one key were in flight at once")
	}
	inOrder(t, sub.all(), byPartitionKey)
	if p := sub.peak.Load(); p < 2 || p > 5 {
		t.Fatalf("peak in flight %d: want the 5 keys (4 + the empty key) in parallel", p)
	}
	if n := len(sub.all()); n != 48 {
		t.Fatalf("%d requests for 48 events", n)
	}
}

// TestRedeliveryAfterADispatcherCrashSkipsNothing: a dispatcher stopped
// with a delivery in flight (and, by key, its key's later records waiting)
// commits nothing past it; the next member of the group delivers it and
// everything after, in order per key.
func TestRedeliveryAfterADispatcherCrashSkipsNothing(t *testing.T) {
	for _, byKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("byKey=%v", byKey), func(t *testing.T) {
			brokers := testenv.Kafka(t, 2, topic)
			events := keyed(20, 4, 0)
			publish(t, brokers, events...)
			var hang atomic.Bool
			hang.Store(true)
			sub := newSubscriber(t, func(e *event.Event, _ int) answer {
				if e.ID() == "e-7" && hang.Load() {
					return answer{status: 202, delay: time.Hour} // the dispatcher dies first
				}
				return answer{status: 202}
			})
			cfg := triggerCfg{group: "knative-trigger-test-crash", target: sub.srv.URL, byKey: byKey, max: 4}
			tr := startTriggers(t, brokers, cfg)[0]
			// By key, e-7's later records (e-11, e-15, e-19) wait behind it.
			want := int64(19)
			if byKey {
				want = 16
			}
			waitFor(t, "the deliveries before the crash", func() bool { return tr.Stats().Delivered == want })
			time.Sleep(300 * time.Millisecond) // commits
			tr.stop()
			hang.Store(false)
			startTriggers(t, brokers, cfg)
			waitFor(t, "e-7 delivered again", func() bool { return len(sub.of("e-7")) == 2 })
			waitFor(t, "every event", func() bool {
				for _, e := range events {
					if len(sub.of(e.ID())) == 0 {
						return false
					}
				}
				return true
			})
			if byKey {
				inOrder(t, sub.all()[len(sub.all())-4:], byPartitionKey) // e-7 then the ones behind it
				if s := sub.of("e-11"); len(s) != 1 || s[0].At.Before(sub.of("e-7")[1].At) {
					t.Fatal("e-11 must be delivered once, after e-7")
				}
			}
		})
	}
}
