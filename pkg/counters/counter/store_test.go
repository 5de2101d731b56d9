package counter_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/counters/dialogs"
)

func openStore(t testing.TB) *counter.Store {
	t.Helper()
	url := countertest.Database(t, "counters_t")
	s, err := counter.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, s *counter.Store, user int64) counter.Counters {
	t.Helper()
	c, err := s.Get(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestApplyExactlyOnce(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	id := func(n int) uuid.UUID { return uuid.NewSHA1(uuid.Nil, []byte{byte(n), byte(n >> 8)}) }
	batch := []counter.Item{
		{ID: id(1), Deltas: []counter.Delta{{UserID: 1, Total: 1, Unread: 1}}},
		{ID: id(2), Deltas: []counter.Delta{{UserID: 1, Total: 1, Unread: 1}}},
		{ID: id(2), Deltas: []counter.Delta{{UserID: 1, Total: 1, Unread: 1}}}, // twice in one batch
		{ID: id(3), Deltas: []counter.Delta{{UserID: 2, Total: 1}}},
		{ID: id(4), Deltas: []counter.Delta{{UserID: 1, Unread: -1}}},
	}
	res, err := s.Apply(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 4 || res.Duplicates != 1 || res.Users != 2 {
		t.Fatalf("result %+v", res)
	}
	if c := get(t, s, 1); c.Total != 2 || c.Unread != 1 {
		t.Fatalf("user 1: %+v", c)
	}
	// the whole batch redelivered, plus one new event
	res, err = s.Apply(ctx, append(batch, counter.Item{ID: id(5), Deltas: []counter.Delta{{UserID: 2, Total: 1, Unread: 1}}}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 1 || res.Duplicates != 5 {
		t.Fatalf("redelivery result %+v", res)
	}
	if c := get(t, s, 1); c.Total != 2 || c.Unread != 1 {
		t.Fatalf("user 1 after redelivery: %+v", c)
	}
	if c := get(t, s, 2); c.Total != 2 || c.Unread != 1 {
		t.Fatalf("user 2: %+v", c)
	}
	if _, err := s.Get(ctx, 99); err == nil || !strings.Contains(err.Error(), "unknown user") {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestApplyConcurrent: overlapping batches from many goroutines, each
// event sent by three of them, count every event once and never deadlock.
func TestApplyConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	const events, users = 6000, 50
	items := make([]counter.Item, events)
	for i := range items {
		items[i] = counter.Item{ID: uuid.New(), Deltas: []counter.Delta{{UserID: int64(i%users + 1), Total: 1, Unread: 1}}}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for g := 0; g < 24; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := (g % 8) * 250 // three goroutines share each offset: same events, different batches
			for lo := off; lo < events; lo += 2000 {
				b := items[lo:min(lo+250+g*7, events)]
				if _, err := s.Apply(ctx, b); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Apply whatever any goroutine skipped, then count.
	if _, err := s.Apply(ctx, items); err != nil {
		t.Fatal(err)
	}
	var total, unread int64
	if err := s.Pool.QueryRow(ctx, `SELECT sum(total), sum(unread) FROM counters`).Scan(&total, &unread); err != nil {
		t.Fatal(err)
	}
	if total != events || unread != events {
		t.Fatalf("sum total %d unread %d, want %d", total, unread, events)
	}
}

func TestUsersNewestWins(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	name := func(s string) *string { return &s }
	items := []counter.Item{
		{ID: uuid.New(), User: &counter.UserChange{ID: 7, Name: name("new"), LSN: 30}, Deltas: []counter.Delta{{UserID: 7}}},
		{ID: uuid.New(), User: &counter.UserChange{ID: 7, Name: name("old"), LSN: 10}, Deltas: []counter.Delta{{UserID: 7}}},
		{ID: uuid.New(), User: &counter.UserChange{ID: 8, Deleted: true, LSN: 50}},
	}
	if _, err := s.Apply(ctx, items[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, items[1:]); err != nil { // an older change arrives later
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, []counter.Item{{ID: uuid.New(), User: &counter.UserChange{ID: 8, Name: name("ghost"), LSN: 40}}}); err != nil {
		t.Fatal(err)
	}
	var n string
	if err := s.Pool.QueryRow(ctx, `SELECT name FROM users WHERE id = 7`).Scan(&n); err != nil || n != "new" {
		t.Fatalf("user 7 name %q, %v", n, err)
	}
	var deleted bool
	if err := s.Pool.QueryRow(ctx, `SELECT deleted FROM users WHERE id = 8`).Scan(&deleted); err != nil || !deleted {
		t.Fatalf("user 8 resurrected by an older event: deleted=%v %v", deleted, err)
	}
	if c := get(t, s, 7); c.Total != 0 || c.Unread != 0 {
		t.Fatalf("user 7 counters %+v", c)
	}
	if n, err := s.Prune(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if n, err := s.Prune(ctx, -time.Hour); err != nil || n != 4 {
		t.Fatalf("prune all: %d %v", n, err)
	}
}

func TestCompareFindsDrift(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	dURL := countertest.Database(t, "dialogs_t")
	d, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, _ := d.CreateUser(ctx, "a")
	b, _ := d.CreateUser(ctx, "b")
	m1, _ := d.Send(ctx, a.ID, b.ID, "hi")
	if _, err := d.Send(ctx, a.ID, b.ID, "again"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.MarkRead(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	users := []counter.Item{
		{ID: uuid.New(), User: &counter.UserChange{ID: a.ID, LSN: 1}, Deltas: []counter.Delta{{UserID: a.ID}}},
		{ID: uuid.New(), User: &counter.UserChange{ID: b.ID, LSN: 1}, Deltas: []counter.Delta{{UserID: b.ID, Total: 2, Unread: 2}}},
	}
	if _, err := s.Apply(ctx, users); err != nil {
		t.Fatal(err)
	}
	rep, err := counter.Compare(ctx, d.Pool, s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Drifts) != 1 || rep.Drifts[0].UserID != b.ID || rep.Drifts[0].Unread-rep.Drifts[0].SourceUnread != 1 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := s.Apply(ctx, []counter.Item{{ID: uuid.New(), Deltas: []counter.Delta{{UserID: b.ID, Unread: -1}}}}); err != nil {
		t.Fatal(err)
	}
	if rep, err = counter.Compare(ctx, d.Pool, s.Pool); err != nil || !rep.OK() {
		t.Fatalf("report %+v %v", rep, err)
	}
}
