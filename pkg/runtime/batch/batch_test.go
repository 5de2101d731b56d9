package batch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

func TestGroupCommitGathersConcurrentCallers(t *testing.T) {
	var mu sync.Mutex
	var batches [][]int
	release := make(chan struct{})
	b := New(Config{MaxItems: 1000, Flushers: 1}, func(_ context.Context, items []int) error {
		mu.Lock()
		batches = append(batches, append([]int(nil), items...))
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // hold the first flush so the others queue up behind it
		}
		return nil
	})
	ctx := running(t, b)

	var wg sync.WaitGroup
	errs := make(chan error, 101)
	wg.Add(1)
	go func() { defer wg.Done(); errs <- b.Add(ctx, 0) }()
	time.Sleep(20 * time.Millisecond)
	for i := 1; i <= 100; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- b.Add(ctx, i) }()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, batch := range batches {
		total += len(batch)
	}
	if total != 101 {
		t.Fatalf("%d items flushed, want 101", total)
	}
	if len(batches) > 3 {
		t.Fatalf("%d batches for 101 items queued behind one flush; group commit should need 2", len(batches))
	}
}

func TestFailedFlushFailsEveryCallerInIt(t *testing.T) {
	boom := errors.New("db down")
	var calls atomic.Int32
	b := New(Config{MaxItems: 10, Linger: 30 * time.Millisecond}, func(_ context.Context, items []int) error {
		calls.Add(1)
		return boom
	})
	ctx := running(t, b)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Add(ctx, i); errors.Is(err, boom) {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 5 {
		t.Fatalf("%d of 5 callers saw the failure", failed.Load())
	}
	if calls.Load() != 1 {
		t.Fatalf("%d flushes, want 1 (linger gathers all 5)", calls.Load())
	}
}

func TestMaxItemsSplitsBatches(t *testing.T) {
	var log flushLog
	b := New(Config{MaxItems: 3, Linger: 20 * time.Millisecond}, log.flush)
	ctx := running(t, b)
	var wg sync.WaitGroup
	for i := range 7 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.Add(ctx, i) }()
	}
	wg.Wait()
	_, sizes := log.taken()
	n := 0
	for _, s := range sizes {
		if s > 3 {
			t.Fatalf("batch of %d over MaxItems 3", s)
		}
		n += s
	}
	if n != 7 {
		t.Fatalf("%d items flushed, want 7", n)
	}
}

// A tuned batcher reads MaxItems and Linger at each batch; a tuning of
// MaxItems under 1 or a negative Linger keeps the Config's.
func TestTuneIsReadAtEachBatch(t *testing.T) {
	var log flushLog
	b := New(Config{MaxItems: 2, Linger: time.Hour}, log.flush)
	var tun atomic.Pointer[Tuning]
	tun.Store(&Tuning{MaxItems: 3, Linger: time.Hour})
	b.Tune(func() Tuning { return *tun.Load() })
	ctx := running(t, b)
	add := func(n int) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- b.Add(actx, i) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	add(3) // an hour's linger: only the tuned MaxItems 3 ends the batch
	tun.Store(&Tuning{MaxItems: 0, Linger: -1})
	add(2) // the Config's: 2 at most, an hour's linger
	tun.Store(&Tuning{MaxItems: 5, Linger: 0})
	add(1) // no linger: a lone item goes at once
	if _, sizes := log.taken(); !slices.Equal(sizes, []int{3, 2, 1}) {
		t.Fatalf("batches %v, want [3 2 1]", sizes)
	}
}

func TestAddAfterCloseFails(t *testing.T) {
	b := New(Config{}, func(context.Context, []int) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	cancel()
	<-done
	if err := b.Add(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

// While the only flusher is busy, callers queue; the next batch takes all
// of them (up to MaxItems), not only those that came within its linger.
func TestBatchGrowsWhileFlushersAreBusy(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	release := make(chan struct{})
	b := New(Config{MaxItems: 1000, Flushers: 1, Linger: time.Millisecond}, func(_ context.Context, items []int) error {
		mu.Lock()
		sizes = append(sizes, len(items))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release
		}
		return nil
	})
	ctx := running(t, b)
	var wg sync.WaitGroup
	add := func(i int) {
		defer wg.Done()
		if err := b.Add(ctx, i); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go add(0)
	time.Sleep(20 * time.Millisecond) // the first batch is flushing (held)
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go add(i)
		time.Sleep(2 * time.Millisecond) // arrivals spread over more than one linger
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 50 {
		t.Fatalf("batch sizes %v, want [1 50]", sizes)
	}
}

// With an Interval, a steady stream is written once per Interval (flush
// starts at least that far apart, everything that came meanwhile in one
// batch), while an item after a quiet spell is flushed at once.
func TestIntervalSpacesFlushesButDoesNotDelayALoneItem(t *testing.T) {
	const interval = 40 * time.Millisecond
	var log flushLog
	b := New(Config{MaxItems: 1000, Flushers: 2, Interval: interval}, log.flush)
	ctx := running(t, b)

	// A stream: an item every 2 ms for 200 ms (longer on a loaded machine:
	// the bound on flushes below is taken from the stream's real length).
	var wg sync.WaitGroup
	streamStart := time.Now()
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Add(ctx, i); err != nil {
				t.Error(err)
			}
		}()
		time.Sleep(2 * time.Millisecond)
	}
	streamed := time.Since(streamStart)
	wg.Wait()
	starts, sizes := log.taken()
	flushes := len(starts)
	for i := 1; i < flushes; i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < interval-time.Millisecond {
			t.Errorf("flushes %d and %d started %v apart, want at least %v", i-1, i, gap, interval)
		}
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	// One flush per interval while the stream lasts, plus the last one.
	if most := int(streamed/interval) + 2; total != 100 || flushes > most {
		t.Errorf("%d items in %d flushes (sizes %v), want 100 items in at most %d flushes (%v of stream / %v)", total, flushes, sizes, most, streamed.Round(time.Millisecond), interval)
	}

	// After a quiet spell longer than the interval, a lone item goes at once.
	time.Sleep(2 * interval)
	start := time.Now()
	if err := b.Add(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > interval/2 {
		t.Errorf("a lone item after a quiet spell took %v, want it flushed at once", took)
	}
}

func TestEnvTakesTheSinksDefaultsForWhatIsUnset(t *testing.T) {
	t.Setenv("X_BATCH_LINGER", "0s")
	t.Setenv("X_BATCH_FLUSHERS", "3")
	var e Env
	if err := envconfig.Process("X", &e); err != nil {
		t.Fatal(err)
	}
	def := Config{MaxItems: 7, Linger: time.Second, Flushers: 1, Timeout: time.Minute}
	got := e.Config(def)
	if want := (Config{MaxItems: 7, Linger: 0, Flushers: 3, Timeout: time.Minute}); got != want {
		t.Fatalf("Config = %+v, want %+v (explicit 0s linger kept, unset ones defaulted)", got, want)
	}
}

// flushLog is a flush that records when each flush started and how many
// items it had.
type flushLog struct {
	mu     sync.Mutex
	starts []time.Time
	sizes  []int
}

func (f *flushLog) flush(_ context.Context, items []int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts, f.sizes = append(f.starts, time.Now()), append(f.sizes, len(items))
	return nil
}

// taken returns copies of what was recorded so far.
func (f *flushLog) taken() ([]time.Time, []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.starts), slices.Clone(f.sizes)
}

// running runs b until the test ends; Add takes the context it returns.
func running[T any](t *testing.T, b *Batcher[T]) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go b.Run(ctx)
	return ctx
}
