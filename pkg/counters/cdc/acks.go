package cdc

import (
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/jackc/pglogrepl"
)

// readAcks counts Kafka's acknowledgements per transaction; the first
// failure is fatal (the adapter stops and resumes at the confirmed LSN).
func (a *Adapter) readAcks(p sarama.AsyncProducer, acks *ackTracker, fatal chan<- error) {
	succ, errs := p.Successes(), p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			acks.done(m.Metadata.(*pendingTx))
			a.addStats(func(s *Stats) { s.Acked++ })
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			acks.fail()
			select {
			case fatal <- fmt.Errorf("produce to %s: %w", e.Msg.Topic, e.Err):
			default:
			}
		}
	}
}

// pendingTx is a decoded transaction whose events are not all acknowledged.
type pendingTx struct {
	end       pglogrepl.LSN
	remaining int
}

// ackTracker yields the LSN up to which every transaction is acknowledged.
type ackTracker struct {
	mu      sync.Mutex
	queue   []*pendingTx
	flushed pglogrepl.LSN
	failed  bool
}

func (t *ackTracker) add(p *pendingTx) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = append(t.queue, p)
	t.advance()
}

func (t *ackTracker) done(p *pendingTx) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p.remaining--
	t.advance()
}

// fail stops the flushed LSN from moving: after a failed produce, later
// acknowledgements must not confirm past the lost event.
func (t *ackTracker) fail() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
}

func (t *ackTracker) advance() {
	for !t.failed && len(t.queue) > 0 && t.queue[0].remaining <= 0 {
		if t.queue[0].end > t.flushed {
			t.flushed = t.queue[0].end
		}
		t.queue = t.queue[1:]
	}
}

// idle moves the flushed LSN to lsn when nothing is pending (a keepalive's
// WAL end between transactions: everything before it has been sent).
func (t *ackTracker) idle(lsn pglogrepl.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.failed && len(t.queue) == 0 && lsn > t.flushed {
		t.flushed = lsn
	}
}

func (t *ackTracker) position() pglogrepl.LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flushed
}
