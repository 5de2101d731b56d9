package subscribe

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// ServeSSE serves GET /subscribe?keys=...[&since=N] as Server-Sent Events.
func (s *Service) ServeSSE(w http.ResponseWriter, r *http.Request) {
	m, since, resume, err := s.request(r, r.Header.Get("Last-Event-ID"))
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	if s.hub != nil && r.ProtoMajor == 1 {
		if conn, _, err := rc.Hijack(); err == nil {
			s.startHub()
			s.hub.serve(conn, m, since, resume)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 1000\n\n")); err != nil {
		return
	}
	subscribers.WithLabelValues("sse").Inc()
	defer subscribers.WithLabelValues("sse").Dec()
	var buf []byte
	send := func(msgs []Message) error {
		buf = buf[:0]
		for _, m := range msgs {
			buf = appendSSE(buf, m)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		sent.Add(float64(len(msgs)))
		if cap(buf) > 64<<10 {
			buf = nil // a large snapshot: do not keep its buffer
		}
		return nil
	}
	_ = Feed(r.Context(), s.table, m, since, resume, s.opts(), send)
}

// appendSSE writes one message in the text/event-stream format.
func appendSSE(b []byte, m Message) []byte {
	b = append(b, "event: "...)
	b = append(b, m.Kind...)
	b = append(b, '\n')
	if m.ID > 0 {
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, m.ID, 10)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, m.Data...) // compact JSON: one line
	return append(b, '\n', '\n')
}

// request reads the keys and the resume position (the header's, else since=).
func (s *Service) request(r *http.Request, lastID string) (Matcher, int64, bool, error) {
	if r.Method != http.MethodGet {
		return Matcher{}, 0, false, fn.WithStatus(http.StatusMethodNotAllowed, errors.New("subscribe with GET"))
	}
	q := r.URL.Query()
	m, err := ParseKeys(q.Get("keys"))
	if err != nil {
		return m, 0, false, fn.Invalid(err)
	}
	if lastID == "" {
		lastID = q.Get("since")
	}
	since, resume, err := ParseSince(lastID)
	if err != nil {
		return m, 0, false, fn.Invalid(err)
	}
	return m, since, resume, nil
}
