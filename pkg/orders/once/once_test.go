package once_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/once"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

func openDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db, err := pgdb.Open(context.Background(), "once test database", testenv.PostgresDB(t),
		once.Schema+`CREATE TABLE IF NOT EXISTS effects (n bigint NOT NULL, tx bigint NOT NULL DEFAULT txid_current());`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db.Pool
}

func in(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType("dev.jobflow.test")
	return e
}

// TestDuplicatesChangeNothing: 20 concurrent deliveries of one event apply
// its effect once and all get the first answer; an effect that fails
// leaves no record, so the next delivery applies it.
func TestDuplicatesChangeNothing(t *testing.T) {
	ctx := context.Background()
	pool := openDB(t)
	c := once.NewCommitter(pool, "test", once.Config{Batch: 64})
	effect := func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO effects VALUES (1)`); err != nil {
			return nil, err
		}
		out := in("reply-1")
		out.SetExtension("partitionkey", "k")
		_ = out.SetData("application/json", map[string]int{"n": 1})
		return []event.Event{out}, nil
	}
	var wg sync.WaitGroup
	results := make([]once.Result, 20)
	errs := make([]error, 20)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = c.Do(ctx, in("a"), effect) }()
	}
	wg.Wait()
	firsts := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !r.Duplicate {
			firsts++
		}
		if len(r.Replies) != 1 || r.Replies[0].ID() != "reply-1" || string(r.Replies[0].Data()) != `{"n":1}` || r.Replies[0].Extensions()["partitionkey"] != "k" {
			t.Fatalf("answer %d: %+v", i, r.Replies)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM effects`).Scan(&n); err != nil || n != 1 || firsts != 1 {
		t.Fatalf("effects %d (%v), first deliveries %d: want 1 and 1", n, err, firsts)
	}

	boom := errors.New("boom")
	if _, err := c.Do(ctx, in("b"), func(context.Context, pgx.Tx) ([]event.Event, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("failed effect: %v", err)
	}
	r, err := c.Do(ctx, in("b"), effect)
	if err != nil || r.Duplicate {
		t.Fatalf("after a failed attempt the event must run again: %+v %v", r, err)
	}
	r, err = c.Do(ctx, in("c"), func(context.Context, pgx.Tx) ([]event.Event, error) { return nil, nil })
	if err != nil || r.Duplicate || len(r.Replies) != 0 {
		t.Fatalf("no replies: %+v %v", r, err)
	}
	if r, err = c.Do(ctx, in("c"), effect); err != nil || !r.Duplicate || len(r.Replies) != 0 {
		t.Fatalf("duplicate of an event without replies: %+v %v", r, err)
	}
}
