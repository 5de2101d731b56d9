package counter_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/counters/counter"
)

// Benchmark workload: change events of messages to benchUsers recipients
// (hot keys), 5 "created unread" for every 3 "marked read".
const benchUsers = 1000

func benchItems(n int, seed uint64) []counter.Item {
	r := rand.New(rand.NewPCG(seed, 7))
	items := make([]counter.Item, n)
	for i := range items {
		d := counter.Delta{UserID: 1 + r.Int64N(benchUsers), Total: 1, Unread: 1}
		if r.IntN(8) < 3 {
			d = counter.Delta{UserID: d.UserID, Unread: -1}
		}
		items[i] = counter.Item{ID: uuid.New(), Deltas: []counter.Delta{d}}
	}
	return items
}

// applyBatched is what the counter function does: batches of batchSize
// events, flushers batches at once (COUNTER_BATCH_FLUSHERS), each one
// transaction with one UPDATE per user.
func applyBatched(ctx context.Context, s *counter.Store, items []counter.Item, batchSize, flushers int) error {
	var wg sync.WaitGroup
	errs := make(chan error, flushers)
	next := make(chan []counter.Item)
	for range flushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				if _, err := s.Apply(ctx, b); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for lo := 0; lo < len(items); lo += batchSize {
		next <- items[lo:min(lo+batchSize, len(items))]
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// applyNaive is the naive counter: one transaction per event, recording its
// id and running one UPDATE, from workers goroutines.
func applyNaive(ctx context.Context, s *counter.Store, items []counter.Item, workers int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan counter.Item, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
					var id uuid.UUID
					err := tx.QueryRow(ctx, `INSERT INTO processed_events (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id`, it.ID).Scan(&id)
					if errors.Is(err, pgx.ErrNoRows) {
						return nil // duplicate
					}
					if err != nil {
						return err
					}
					d := it.Deltas[0]
					_, err = tx.Exec(ctx, `INSERT INTO counters AS c (user_id, total, unread) VALUES ($1, $2, $3)
						ON CONFLICT (user_id) DO UPDATE SET total = c.total + EXCLUDED.total, unread = c.unread + EXCLUDED.unread, updated_at = now()`,
						d.UserID, d.Total, d.Unread)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

func checkSums(b *testing.B, s *counter.Store, items []counter.Item) {
	var wantT, wantU, total, unread int64
	for _, it := range items {
		wantT += it.Deltas[0].Total
		wantU += it.Deltas[0].Unread
	}
	if err := s.Pool.QueryRow(context.Background(), `SELECT coalesce(sum(total),0), coalesce(sum(unread),0) FROM counters`).Scan(&total, &unread); err != nil {
		b.Fatal(err)
	}
	if total != wantT || unread != wantU {
		b.Fatalf("sums total %d unread %d, want %d %d", total, unread, wantT, wantU)
	}
}

// BenchmarkCounters measures, in one run on fresh databases, the events per
// second the batched counter applies (batches of 1000, 2 flushers) and the
// naive one-UPDATE-per-event counter (8 workers), and their ratio.
// Run: go test -run '^$' -bench BenchmarkCounters -benchtime 1x ./pkg/counters
func BenchmarkCounters(b *testing.B) {
	ctx := context.Background()
	const batchedEvents, naiveEvents = 300_000, 20_000
	var batchedRate, naiveRate float64
	for i := 0; i < b.N; i++ {
		s := openStore(b)
		items := benchItems(batchedEvents, uint64(i))
		start := time.Now()
		if err := applyBatched(ctx, s, items, 1000, 2); err != nil {
			b.Fatal(err)
		}
		batchedRate = float64(len(items)) / time.Since(start).Seconds()
		checkSums(b, s, items)
		// the same events again: every one a duplicate, nothing changes
		if err := applyBatched(ctx, s, items[:50_000], 1000, 2); err != nil {
			b.Fatal(err)
		}
		checkSums(b, s, items)

		n := openStore(b)
		nitems := benchItems(naiveEvents, uint64(i)+100)
		start = time.Now()
		if err := applyNaive(ctx, n, nitems, 8); err != nil {
			b.Fatal(err)
		}
		naiveRate = float64(len(nitems)) / time.Since(start).Seconds()
		checkSums(b, n, nitems)
	}
	b.ReportMetric(batchedRate, "batched_events/s")
	b.ReportMetric(naiveRate, "naive_events/s")
	b.ReportMetric(batchedRate/naiveRate, "speedup_x")
	b.Logf("counter events applied: batched %.0f/s, naive one-UPDATE-per-event %.0f/s, ratio %.1fx", batchedRate, naiveRate, batchedRate/naiveRate)
}

// BenchmarkCounterApplyBatch is the cost of one batch of 1000 events.
func BenchmarkCounterApplyBatch(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	items := benchItems(1000*b.N, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Apply(ctx, items[i*1000:(i+1)*1000]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "events/s")
}
