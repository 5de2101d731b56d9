package once

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

// Config of a service's group commit.
type Config struct {
	Batch int `envconfig:"ORDERS_COMMIT_BATCH" default:"64" desc:"most events an orders service (payment, stock, delivery, saga) handles in one PostgreSQL transaction (group commit); 1: a transaction per event"`
}

// BatchTimeout bounds one group's transaction: past it the group fails
// (its callers get an error, their events are delivered again) rather than
// stalling every event of the service behind a stuck connection.
const BatchTimeout = time.Minute

var (
	batchSize = metrics.NewHistogram("orders_commit_batch_size",
		"Events handled in one PostgreSQL transaction (group commit) by an orders service.",
		[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256}, "service")
	batchSeconds = metrics.NewHistogram("orders_commit_batch_duration_seconds",
		"Time of one group commit of an orders service, from BEGIN to COMMIT (its events run one after the other).",
		[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "service")
	batchFailed = metrics.NewCounter("orders_commit_batch_failures_total",
		"Group commits that failed as a whole (begin, savepoint or commit error): every event of the group is delivered again.",
		"service")
)

// groupLock is the advisory lock (the two-int key space, apart from the
// one-bigint keys of the orders' locks) that a group holds from its start
// to its end, so groups of a service's instances run one at a time.
var groupLock = [2]int32{0x6a6f62, 0x6f6e6365} // "job", "once"

// Committer runs Do calls in groups: concurrent calls queue, one
// goroutine takes what is queued (at most Config.Batch) and runs them in
// one transaction, each under its own savepoint, then commits once and
// releases every caller with its own Result. What arrives while a group
// commits makes the next group; there is no waiting for more (a lone event
// commits at once).
//
// One group at a time per database: the effects' locks (advisory locks on
// orders, row locks on accounts, products, slots) accumulate until the
// commit, in whatever order the group's events come, so two groups at once
// would wait on each other and, taking two rows in opposite orders,
// deadlock (PostgreSQL breaks that only after deadlock_timeout, 1 s). So a
// group first takes one advisory lock of the database (groupLock): groups
// of one process, and of every instance of the function, run one after the
// other, and never deadlock with each other. A statement outside the
// groups (an API call, the saga's sweep) takes its rows in one statement or
// skips locked ones. Should a deadlock still occur, PostgreSQL fails one
// statement: only that event's savepoint rolls back and its caller gets the
// error (the event is delivered again). The calls of a group run in the
// order of their partitionkey (then source, id).
type Committer struct {
	pool    *pgxpool.Pool
	service string // the metrics' label
	max     int

	mu      sync.Mutex
	queue   []*call
	running bool

	batches, calls, failed atomic.Int64
}

// NewCommitter groups the calls of service (a metrics label) on pool.
func NewCommitter(pool *pgxpool.Pool, service string, cfg Config) *Committer {
	return &Committer{pool: pool, service: service, max: max(cfg.Batch, 1)}
}

type call struct {
	ctx    context.Context
	in     event.Event
	effect Effect
	res    Result
	err    error
	done   chan struct{}
}

// Do handles in exactly once, in a group with the calls that queue
// meanwhile: it records (source, id) of in, runs effect and stores its
// replies; when in was handled before (also earlier in the same group),
// effect does not run and the stored replies are returned. An error of
// effect is this call's alone; a failed commit fails every call of the
// group. When ctx ends first, Do returns its error, but a group that has
// already taken the call may still commit it (a redelivery is then a
// duplicate): ctx never reaches the group's transaction.
func (c *Committer) Do(ctx context.Context, in event.Event, effect Effect) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	k := &call{ctx: ctx, in: in, effect: effect, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, k)
	if !c.running {
		c.running = true
		go c.run()
	}
	c.mu.Unlock()
	select {
	case <-k.done:
		return k.res, k.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("event %s/%s: %w (it may still commit with its group)", in.Source(), in.ID(), context.Cause(ctx))
	}
}

// run commits groups until the queue is empty.
func (c *Committer) run() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.max)
		if n == 0 {
			c.running = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		group := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		c.mu.Unlock()
		c.commit(group)
	}
}

// commit runs group in one transaction and releases its callers.
func (c *Committer) commit(group []*call) {
	live := make([]*call, 0, len(group))
	for _, k := range group {
		if err := k.ctx.Err(); err != nil {
			k.err = err // its caller has gone: the event is not run
			close(k.done)
			continue
		}
		live = append(live, k)
	}
	if len(live) == 0 {
		return
	}
	slices.SortStableFunc(live, func(a, b *call) int {
		return cmp.Or(cmp.Compare(key(a.in), key(b.in)), cmp.Compare(a.in.Source(), b.in.Source()), cmp.Compare(a.in.ID(), b.in.ID()))
	})
	ctx, cancel := context.WithTimeout(context.Background(), BatchTimeout)
	defer cancel()
	began := time.Now()
	err := c.inTx(ctx, live)
	batchSeconds.WithLabelValues(c.service).Observe(time.Since(began).Seconds())
	c.batches.Add(1)
	c.calls.Add(int64(len(live)))
	batchSize.WithLabelValues(c.service).Observe(float64(len(live)))
	if err != nil {
		c.failed.Add(1)
		batchFailed.WithLabelValues(c.service).Inc()
		err = fmt.Errorf("%s: group of %d events: %w", c.service, len(live), err)
	}
	for _, k := range live {
		if err != nil {
			k.res, k.err = Result{}, err
		}
		close(k.done)
	}
}

func key(e event.Event) string {
	k, _ := e.Extensions()["partitionkey"].(string)
	return k
}

// inTx runs every call under its own savepoint of one transaction and
// commits it. An error is the whole group's.
func (c *Committer) inTx(ctx context.Context, group []*call) error {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, groupLock[0], groupLock[1]); err != nil {
		return fmt.Errorf("group lock: %w", err)
	}
	for _, k := range group {
		k.res, k.err = applySafely(ctx, tx, k.in, k.effect)
		if k.err != nil {
			k.res = Result{}
			if err := rollback(ctx, tx); err != nil {
				return fmt.Errorf("roll back to the savepoint of %s/%s: %w", k.in.Source(), k.in.ID(), errors.Join(err, k.err))
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// applySafely is apply with an effect's panic turned into its error: it
// runs on the group's goroutine, where a panic would end the process (and
// no HTTP server recovers it).
func applySafely(ctx context.Context, tx pgx.Tx, in event.Event, effect Effect) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = Result{}, fmt.Errorf("effect of %s/%s panicked: %v", in.Source(), in.ID(), r)
		}
	}()
	return apply(ctx, tx, in, effect)
}

// Stats are what a Committer did so far.
type Stats struct {
	Batches int64 // transactions run (committed or failed)
	Calls   int64 // calls run in them
	Failed  int64 // transactions that failed as a whole
}

// Stats says what c did so far.
func (c *Committer) Stats() Stats {
	return Stats{Batches: c.batches.Load(), Calls: c.calls.Load(), Failed: c.failed.Load()}
}

// Queued is the number of calls waiting for the next group.
func (c *Committer) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}
