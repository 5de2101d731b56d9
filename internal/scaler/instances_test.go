package scaler

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/procs"
)

func newTestSet(t *testing.T) *instanceSet {
	s := newInstanceSet(procs.Spec{Name: "set-test", Bin: fakeBin, Env: os.Environ(), Log: io.Discard},
		10*time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(s.stop)
	return s
}

func waitCounts(t *testing.T, s *instanceSet, ready, starting, draining int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, st, d := s.counts()
		if r == ready && st == starting && d == draining {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances ready/starting/draining %d/%d/%d, want %d/%d/%d", r, st, d, ready, starting, draining)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustAcquire(t *testing.T, s *instanceSet) lease {
	t.Helper()
	l, _, err := s.acquire()
	if l == nil || err != nil {
		t.Fatalf("acquire: %v, %v", l, err)
	}
	return l
}

// The set alone: instances start and report their cold starts, requests go
// to the least-loaded ready instance, and a draining instance takes no new
// request and stops only once its requests are answered.
func TestInstanceSetRoutesToLeastLoadedAndDrains(t *testing.T) {
	s := newTestSet(t)
	s.scaleTo(2)
	waitCounts(t, s, 2, 0, 0)
	select {
	case <-s.started:
	default:
		t.Fatal("started not closed with ready instances")
	}
	var st Status
	s.fill(&st)
	if st.ColdStarts != 2 || st.PerInstance[0].ColdStartMs <= 0 || st.PerInstance[1].PID == 0 {
		t.Fatalf("status of two ready instances: %+v", st)
	}

	busy, idle := mustAcquire(t, s), mustAcquire(t, s)
	if busy.host() == idle.host() {
		t.Fatal("two requests went to the same instance while the other was idle")
	}
	idle.release(true)
	if l := mustAcquire(t, s); l.host() != idle.host() {
		t.Fatal("a request went to the busier instance")
	} else {
		l.release(true)
	}

	s.scaleTo(1) // the idle one drains and stops at once
	waitCounts(t, s, 1, 0, 0)
	if l := mustAcquire(t, s); l.host() != busy.host() {
		t.Fatal("the busy instance was drained instead of the idle one")
	} else {
		l.release(true)
	}

	s.scaleTo(0) // the busy one drains, but waits for its request
	waitCounts(t, s, 0, 0, 1)
	if l, changed, err := s.acquire(); l != nil || changed == nil || err != nil {
		t.Fatalf("acquire with only a draining instance: %v, %v", l, err)
	}
	time.Sleep(200 * time.Millisecond)
	waitCounts(t, s, 0, 0, 1)
	busy.release(true)
	waitCounts(t, s, 0, 0, 0)

	s.stop()
	if _, _, err := s.acquire(); err != errStopping {
		t.Fatalf("acquire after stop: %v, want errStopping", err)
	}
	s.scaleTo(1)
	waitCounts(t, s, 0, 0, 0)
}

func TestInstanceSetRestartsAKilledInstance(t *testing.T) {
	s := newTestSet(t)
	s.scaleTo(1)
	waitCounts(t, s, 1, 0, 0)
	if err := s.kill(time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.restarts() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the killed instance did not restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitCounts(t, s, 1, 0, 0)
}
