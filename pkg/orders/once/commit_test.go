package once_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/pkg/orders/once"
)

// insert is an effect that adds the row n to effects (with its
// transaction's id) and answers one event.
func insert(n int) once.Effect {
	return func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO effects (n) VALUES ($1)`, n); err != nil {
			return nil, err
		}
		return []event.Event{in(fmt.Sprintf("reply-%d", n))}, nil
	}
}

type outcome struct {
	res once.Result
	err error
}

// group runs the calls concurrently behind a first call that holds its
// group open until all of them are queued, so they make the next group(s);
// it returns their outcomes in order. queued runs once all are queued.
func group(t *testing.T, c *once.Committer, calls []func() (once.Result, error), queued ...func()) []outcome {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), in("blocker"), func(context.Context, pgx.Tx) ([]event.Event, error) {
			close(started)
			<-release
			return nil, nil
		})
		first <- err
	}()
	<-started
	out := make([]outcome, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		go func() { defer wg.Done(); out[i].res, out[i].err = call() }()
	}
	waitFor(t, func() bool { return c.Queued() == len(calls) }, "every call to queue")
	for _, f := range queued {
		f()
	}
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("blocker: %v", err)
	}
	return out
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConcurrentCallsShareATransaction: calls that queue while a group
// commits make the next group, at most Batch each, one transaction each.
func TestConcurrentCallsShareATransaction(t *testing.T) {
	for _, tc := range []struct {
		batch, calls int
		groups       int64 // after the blocker's
	}{{64, 20, 1}, {8, 20, 3}} {
		t.Run(fmt.Sprintf("batch %d", tc.batch), func(t *testing.T) {
			pool := openDB(t)
			c := once.NewCommitter(pool, "test", once.Config{Batch: tc.batch})
			calls := make([]func() (once.Result, error), tc.calls)
			for i := range calls {
				calls[i] = func() (once.Result, error) { return c.Do(context.Background(), in(fmt.Sprint(i)), insert(i)) }
			}
			for i, o := range group(t, c, calls) {
				if o.err != nil || o.res.Duplicate || len(o.res.Replies) != 1 || o.res.Replies[0].ID() != fmt.Sprintf("reply-%d", i) {
					t.Fatalf("call %d: %+v %v", i, o.res, o.err)
				}
			}
			st := c.Stats()
			if st.Batches != 1+tc.groups || st.Calls != int64(1+tc.calls) || st.Failed != 0 {
				t.Fatalf("stats %+v: want %d groups (the blocker's and %d), %d calls", st, 1+tc.groups, tc.groups, 1+tc.calls)
			}
			if n, txs := count(t, pool, `SELECT count(*) FROM effects`), count(t, pool, `SELECT count(DISTINCT tx) FROM effects`); n != tc.calls || txs != int(tc.groups) {
				t.Fatalf("%d effects in %d transactions: want %d in %d", n, txs, tc.calls, tc.groups)
			}
		})
	}
}

// TestFailingEffectFailsAlone: an effect that returns an error, one whose
// SQL fails (aborting the transaction but for the savepoint) and one that
// panics fail their own callers only; neither leaves its record or its rows, and the
// rest of the group commits in one transaction.
func TestFailingEffectFailsAlone(t *testing.T) {
	pool := openDB(t)
	c := once.NewCommitter(pool, "test", once.Config{Batch: 64})
	boom := errors.New("boom")
	calls := make([]func() (once.Result, error), 10)
	for i := range calls {
		effect := insert(i)
		switch i {
		case 3:
			effect = func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
				if _, err := insert(i)(ctx, tx); err != nil {
					return nil, err
				}
				return nil, boom
			}
		case 6:
			effect = func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
				_, err := tx.Exec(ctx, `INSERT INTO effects (n) VALUES (1 / 0)`)
				return nil, err
			}
		case 8:
			effect = func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
				if _, err := insert(i)(ctx, tx); err != nil {
					return nil, err
				}
				panic("bug")
			}
		}
		calls[i] = func() (once.Result, error) { return c.Do(context.Background(), in(fmt.Sprint(i)), effect) }
	}
	for i, o := range group(t, c, calls) {
		switch {
		case i == 3 && !errors.Is(o.err, boom), (i == 6 || i == 8) && o.err == nil:
			t.Fatalf("failing call %d: %+v %v", i, o.res, o.err)
		case i != 3 && i != 6 && i != 8 && (o.err != nil || len(o.res.Replies) != 1):
			t.Fatalf("call %d: %+v %v", i, o.res, o.err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM processed_events WHERE id IN ('3', '6', '8')`); n != 0 {
		t.Fatalf("%d records of the failed events", n)
	}
	if n, txs := count(t, pool, `SELECT count(*) FROM effects`), count(t, pool, `SELECT count(DISTINCT tx) FROM effects`); n != 7 || txs != 1 {
		t.Fatalf("%d effects in %d transactions: want 7 in 1", n, txs)
	}
	if st := c.Stats(); st.Batches != 2 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The failed events run again when delivered again.
	if r, err := c.Do(context.Background(), in("3"), insert(3)); err != nil || r.Duplicate {
		t.Fatalf("redelivery: %+v %v", r, err)
	}
}

// TestDuplicatesInOneGroup: two deliveries of one event in one group: the
// first runs, the second is a duplicate with the first's answer.
func TestDuplicatesInOneGroup(t *testing.T) {
	pool := openDB(t)
	c := once.NewCommitter(pool, "test", once.Config{Batch: 64})
	calls := make([]func() (once.Result, error), 6)
	for i := range calls {
		calls[i] = func() (once.Result, error) { return c.Do(context.Background(), in(fmt.Sprint(i%3)), insert(i)) }
	}
	out := group(t, c, calls)
	for id := range 3 {
		a, b := out[id], out[id+3]
		if a.err != nil || b.err != nil || a.res.Duplicate == b.res.Duplicate {
			t.Fatalf("event %d: %+v %v / %+v %v: want one first delivery and one duplicate", id, a.res, a.err, b.res, b.err)
		}
		if len(a.res.Replies) != 1 || len(b.res.Replies) != 1 || a.res.Replies[0].ID() != b.res.Replies[0].ID() {
			t.Fatalf("event %d: different answers %+v / %+v", id, a.res.Replies, b.res.Replies)
		}
	}
	if n, txs := count(t, pool, `SELECT count(*) FROM effects`), count(t, pool, `SELECT count(DISTINCT tx) FROM effects`); n != 3 || txs != 1 {
		t.Fatalf("%d effects in %d transactions: want 3 in 1", n, txs)
	}
}

// TestFailedCommitFailsAll: a group whose COMMIT fails (a deferred
// constraint, checked only then) fails every caller and records nothing;
// delivered again in groups of their own, the good events commit.
func TestFailedCommitFailsAll(t *testing.T) {
	pool := openDB(t)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE late (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	c := once.NewCommitter(pool, "test", once.Config{Batch: 64})
	poison := func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
		_, err := tx.Exec(ctx, `INSERT INTO late VALUES (1), (1)`)
		return nil, err
	}
	calls := make([]func() (once.Result, error), 5)
	for i := range calls {
		effect := insert(i)
		if i == 2 {
			effect = poison
		}
		calls[i] = func() (once.Result, error) { return c.Do(context.Background(), in(fmt.Sprint(i)), effect) }
	}
	for i, o := range group(t, c, calls) {
		if o.err == nil {
			t.Fatalf("call %d of a failed commit: %+v, no error", i, o.res)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM processed_events WHERE id <> 'blocker'`) + count(t, pool, `SELECT count(*) FROM effects`); n != 0 {
		t.Fatalf("a failed commit left %d rows", n)
	}
	if st := c.Stats(); st.Failed != 1 {
		t.Fatalf("stats %+v: want 1 failed group", st)
	}
	if r, err := c.Do(context.Background(), in("0"), insert(0)); err != nil || r.Duplicate {
		t.Fatalf("redelivery: %+v %v", r, err)
	}
}

// TestCancelledCallerDoesNotPoisonTheGroup: a caller gone before its group
// starts is not run; one gone while its effect runs gets its context's
// error, but the group (its event included) commits.
func TestCancelledCallerDoesNotPoisonTheGroup(t *testing.T) {
	pool := openDB(t)
	c := once.NewCommitter(pool, "test", once.Config{Batch: 64})
	early, cancelEarly := context.WithCancel(context.Background())
	late, cancelLate := context.WithCancel(context.Background())
	calls := []func() (once.Result, error){
		func() (once.Result, error) { return c.Do(context.Background(), in("0"), insert(0)) },
		func() (once.Result, error) {
			return c.Do(late, in("1"), func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
				cancelLate() // Do returns at once: its group cannot end before this effect
				return insert(1)(ctx, tx)
			})
		},
		func() (once.Result, error) { return c.Do(early, in("2"), insert(2)) },
		func() (once.Result, error) { return c.Do(context.Background(), in("3"), insert(3)) },
	}
	out := group(t, c, calls, cancelEarly) // the early caller gives up while queued
	if out[0].err != nil || out[3].err != nil || !errors.Is(out[1].err, context.Canceled) || !errors.Is(out[2].err, context.Canceled) {
		t.Fatalf("outcomes %+v", out)
	}
	rows, _ := pool.Query(context.Background(), `SELECT n FROM effects ORDER BY n`)
	ns, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || fmt.Sprint(ns) != "[0 1 3]" {
		t.Fatalf("effects %v %v: want [0 1 3] (the late caller's committed, the early one's not run)", ns, err)
	}
	if r, err := c.Do(context.Background(), in("1"), insert(1)); err != nil || !r.Duplicate {
		t.Fatalf("redelivery of the late caller's event: %+v %v", r, err)
	}
}

// TestGroupsOfTwoInstancesDoNotDeadlock: two committers on one database
// (two instances of a function) whose groups take two rows in opposite
// orders: the groups run one after the other, so neither fails (without
// the group lock PostgreSQL detects a deadlock and fails one of them).
func TestGroupsOfTwoInstancesDoNotDeadlock(t *testing.T) {
	pool := openDB(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY); INSERT INTO accounts VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	a := once.NewCommitter(pool, "a", once.Config{Batch: 64})
	b := once.NewCommitter(pool, "b", once.Config{Batch: 64})
	aHolds, bHolds := make(chan struct{}), make(chan struct{})
	lock := func(ctx context.Context, tx pgx.Tx, id int) error {
		_, err := tx.Exec(ctx, `SELECT id FROM accounts WHERE id = $1 FOR UPDATE`, id)
		return err
	}
	// Each takes its first row, waits (a while at most) for the other to
	// hold its own, then takes the other's.
	crossing := func(first, second int, mine, theirs chan struct{}) once.Effect {
		return func(ctx context.Context, tx pgx.Tx) ([]event.Event, error) {
			if err := lock(ctx, tx, first); err != nil {
				return nil, err
			}
			close(mine)
			select {
			case <-theirs:
			case <-time.After(3 * time.Second):
			}
			return nil, lock(ctx, tx, second)
		}
	}
	errs := make(chan error, 2)
	go func() { _, err := a.Do(ctx, in("a"), crossing(1, 2, aHolds, bHolds)); errs <- err }()
	go func() { _, err := b.Do(ctx, in("b"), crossing(2, 1, bHolds, aHolds)); errs <- err }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("groups of two instances: %v", err)
		}
	}
}
