package subscribe

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jobflow/jobflow/pkg/config/store"
)

// fastWrite is how long the hub waits for a connection without a file
// descriptor to take a write; a socket's write does not wait at all
// (writeNow). A write to a subscriber that keeps up completes at once
// (into the kernel's socket buffer); one that does not finds the buffer
// full, and finishes in a goroutine of its own so that it slows no one.
const fastWrite = 2 * time.Millisecond

// hub holds idle SSE subscribers without a goroutine each.
//
// A subscription costs net/http a goroutine (whose stack the handler
// grew), the connection's read and write buffers and a background reader:
// about 40 KiB, mostly for a connection that waits. So once a subscriber
// has its first batch, its connection is taken from net/http (hijacked)
// and parked here as a socket and a cursor. One loop wakes at every change
// of the table and writes each parked subscriber what it has not seen,
// from a few writers; at every heartbeat it also notices the subscribers
// that left (a read that finds the end of the stream) and ends those past
// MaxStream. A subscriber whose socket does not take a write at once
// finishes that write in a goroutine of its own (release), so a slow one
// delays no one.
type hub struct {
	table   *store.Table
	opts    Options
	timeout time.Duration // WriteTimeout
	ctx     context.Context

	mu     sync.Mutex
	parked map[*parkedSub]struct{}
	poke   chan struct{}
	slow   sync.WaitGroup

	releases atomic.Int64 // writes finished out of the hub
}

// parkedSub is a subscriber held by the hub.
type parkedSub struct {
	conn   net.Conn
	m      Matcher
	cursor int64
	end    time.Time // MaxStream; zero: none
	buf    []byte
}

func newHub(ctx context.Context, t *store.Table, o Options, writeTimeout time.Duration) *hub {
	return &hub{table: t, opts: o, timeout: writeTimeout, ctx: ctx,
		parked: map[*parkedSub]struct{}{}, poke: make(chan struct{}, 1)}
}

// sseHeader opens a stream on a hijacked connection: its end is the end
// of the connection (HTTP/1.1 without chunking).
const sseHeader = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 1000\n\n"

// serve answers a subscription on conn (taken from net/http): the header
// and the first batch, written by the caller's goroutine, then the
// subscriber is parked.
func (h *hub) serve(conn net.Conn, m Matcher, since int64, resume bool) {
	if h.ctx.Err() != nil { // the service is closing
		_ = conn.Close()
		return
	}
	msgs, cursor := First(h.ctx, h.table, m, since, resume, h.opts)
	buf := append([]byte(sseHeader), encodeSSE(nil, msgs)...)
	_ = conn.SetWriteDeadline(time.Now().Add(h.timeout))
	if _, err := conn.Write(buf); err != nil {
		_ = conn.Close()
		return
	}
	sent.Add(float64(len(msgs)))
	p := &parkedSub{conn: conn, m: m, cursor: cursor}
	if h.opts.MaxStream > 0 {
		p.end = time.Now().Add(h.opts.MaxStream)
	}
	subscribers.WithLabelValues("sse").Inc()
	h.park(p)
}

// park adds a subscriber to the hub, and has the hub look at once for
// changes that came while it was away.
func (h *hub) park(p *parkedSub) {
	h.mu.Lock()
	h.parked[p] = struct{}{}
	h.mu.Unlock()
	parkedGauge.Inc()
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// run writes changes to the parked subscribers until ctx ends, then
// closes their connections and waits for the slow ones.
func (h *hub) run() {
	heartbeat := time.NewTicker(h.opts.Heartbeat)
	defer heartbeat.Stop()
	beat := false
	for {
		changed := h.table.Changed()
		h.round(beat)
		beat = false
		select {
		case <-h.ctx.Done():
			h.closeAll()
			h.slow.Wait()
			return
		case <-changed:
		case <-h.poke:
		case <-heartbeat.C:
			beat = true
		}
	}
}

// round brings every parked subscriber up to the head, from a few writers;
// on a heartbeat it also writes a heartbeat to those with nothing new,
// drops those that left and ends those past MaxStream.
func (h *hub) round(beat bool) {
	h.mu.Lock()
	subs := make([]*parkedSub, 0, len(h.parked))
	for p := range h.parked {
		subs = append(subs, p)
	}
	h.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	writers := min(len(subs), 2*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	now := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(subs); i += writers {
				h.bring(subs[i], beat, now)
			}
		}()
	}
	wg.Wait()
}

// bring writes one parked subscriber what it has not seen.
func (h *hub) bring(p *parkedSub, beat bool, now time.Time) {
	if beat && left(p.conn) {
		h.drop(p)
		return
	}
	msgs, head := next(h.table, p.m, p.cursor)
	ending := beat && !p.end.IsZero() && now.After(p.end)
	switch {
	case ending:
		msgs = append(msgs, endOfStream(head))
	case beat && len(msgs) == 0:
		msgs = []Message{heartbeatAt(head)}
	case len(msgs) == 0:
		p.cursor = head
		return
	}
	p.buf = encodeSSE(p.buf[:0], msgs)
	n, err := writeNow(p.conn, p.buf)
	switch {
	case err == nil && n == len(p.buf):
		sent.Add(float64(len(msgs)))
		p.cursor = head
		if cap(p.buf) > 4<<10 {
			p.buf = nil // a snapshot: do not keep its buffer
		}
		if ending {
			h.drop(p)
		}
	case full(err) && !ending:
		h.release(p, p.buf[n:], head, len(msgs))
	default:
		h.drop(p)
	}
}

// release lets a subscriber whose socket is full finish its write in a
// goroutine of its own (within WriteTimeout, else its connection is
// closed and its client resumes), then parks it again at head; what came
// meanwhile reaches it from there, or a reset and a snapshot if it fell
// behind the retained log.
func (h *hub) release(p *parkedSub, rest []byte, head int64, n int) {
	h.mu.Lock()
	delete(h.parked, p)
	h.mu.Unlock()
	parkedGauge.Dec()
	released.Inc()
	h.releases.Add(1)
	rest = append([]byte(nil), rest...)
	h.slow.Add(1)
	go func() {
		defer h.slow.Done()
		_ = p.conn.SetWriteDeadline(time.Now().Add(h.timeout))
		if _, err := p.conn.Write(rest); err != nil || h.ctx.Err() != nil {
			_ = p.conn.Close()
			subscribers.WithLabelValues("sse").Dec()
			return
		}
		sent.Add(float64(n))
		p.cursor = head
		h.park(p)
	}()
}

// drop closes a parked subscriber's connection.
func (h *hub) drop(p *parkedSub) {
	h.mu.Lock()
	_, ok := h.parked[p]
	delete(h.parked, p)
	h.mu.Unlock()
	if ok {
		_ = p.conn.Close()
		subscribers.WithLabelValues("sse").Dec()
		parkedGauge.Dec()
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	subs := make([]*parkedSub, 0, len(h.parked))
	for p := range h.parked {
		subs = append(subs, p)
	}
	h.mu.Unlock()
	for _, p := range subs {
		h.drop(p)
	}
}

// left reports whether the client closed its side: a subscriber sends
// nothing after its request, so a read that does not time out at once
// finds the end of the stream (or a reset).
func left(conn net.Conn) bool {
	var b [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(time.Microsecond))
	_, err := conn.Read(b[:])
	return err != nil && (errors.Is(err, io.EOF) || !errors.Is(err, os.ErrDeadlineExceeded))
}

// writeNow writes what conn's socket takes at once, without waiting and
// without a timer: n < len(b) with a nil error or EAGAIN means its buffer
// is full. A connection without a file descriptor gets fastWrite.
func writeNow(conn net.Conn, b []byte) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		_ = conn.SetWriteDeadline(time.Now().Add(fastWrite))
		return conn.Write(b)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := syscall.Write(int(fd), b[n:])
			if e == syscall.EINTR {
				continue
			}
			if e != nil || m <= 0 {
				werr = e
				break
			}
			n += m
		}
		return true // never wait for the socket
	})
	if err == nil {
		err = werr
	}
	return n, err
}

// full: a write stopped because the socket's buffer is full.
func full(err error) bool {
	return err == nil || errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded)
}

func encodeSSE(b []byte, msgs []Message) []byte {
	for _, m := range msgs {
		b = appendSSE(b, m)
	}
	return b
}
