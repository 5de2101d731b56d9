package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// frame is one snapshot pushed to the pages.
type frame struct {
	Status any                `json:"status"`
	Counts map[string]int64   `json:"counts"`
	Rates  map[string]float64 `json:"rates"` // per second over the last interval
}

// hub samples the engine once per interval while at least one page
// listens, and pushes a frame to every page when it changed: one sampler
// however many pages are open.
type hub struct {
	interval time.Duration
	sample   func() Sample

	mu      sync.Mutex
	subs    map[chan []byte]bool
	last    []byte // the last frame sent, as an SSE message
	running bool
	done    chan struct{}
}

func newHub(interval time.Duration, sample func() Sample) *hub {
	return &hub{interval: interval, sample: sample, subs: map[chan []byte]bool{}, done: make(chan struct{})}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
	default:
		close(h.done)
	}
}

// serve is the SSE stream: the last frame at once, then each new one; a
// comment every 15 s keeps idle connections open.
func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		fail(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch, first := h.subscribe()
	defer h.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("retry: 2000\n\n"))
	if first != nil {
		_, _ = w.Write(first)
	}
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case msg := <-ch:
			if _, err := w.Write(msg); err != nil {
				return
			}
		case <-keepalive.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}

func (h *hub) subscribe() (chan []byte, []byte) {
	ch := make(chan []byte, 4)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[ch] = true
	if !h.running {
		h.running = true
		h.last = nil
		go h.run()
	}
	first := h.last
	if first == nil {
		// No frame yet: one now, so the page draws at once.
		first = message(buildFrame(h.sample(), nil, 0))
	}
	return ch, first
}

func (h *hub) unsubscribe(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, ch)
}

// run samples until no page listens.
func (h *hub) run() {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	prev, prevAt := h.sample(), time.Now()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		cur, at := h.sample(), time.Now()
		msg := message(buildFrame(cur, prev.Counts, at.Sub(prevAt)))
		prev, prevAt = cur, at
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		if !bytes.Equal(msg, h.last) {
			h.last = msg
			for ch := range h.subs {
				select {
				case ch <- msg:
				default: // a page that does not keep up misses a frame
				}
			}
		}
		h.mu.Unlock()
	}
}

func buildFrame(s Sample, prev map[string]int64, dt time.Duration) frame {
	f := frame{Status: s.Status, Counts: s.Counts, Rates: map[string]float64{}}
	for k, v := range s.Counts {
		if strings.HasSuffix(k, "/in_flight") {
			continue
		}
		rate := 0.0
		if p, ok := prev[k]; ok && dt > 0 && v >= p {
			rate = math.Round(float64(v-p)/dt.Seconds()*10) / 10
		}
		f.Rates[k] = rate
	}
	return f
}

// message is f as one SSE message (event "frame").
func message(f frame) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	return []byte("event: frame\ndata: " + string(b) + "\n\n")
}
