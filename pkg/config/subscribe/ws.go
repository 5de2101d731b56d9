package subscribe

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/coder/websocket"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// ServeWS serves GET /ws?keys=...[&since=N] as a WebSocket: the same
// messages as /subscribe, one JSON text message each:
// {"event":"change","id":12,"data":{...}}.
func (s *Service) ServeWS(w http.ResponseWriter, r *http.Request) {
	m, since, resume, err := s.request(r, "")
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: s.cfg.AnyOrigin})
	if err != nil {
		return // Accept answered the client
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context()) // the client says nothing; this notices it leaving
	subscribers.WithLabelValues("ws").Inc()
	defer subscribers.WithLabelValues("ws").Dec()
	var buf []byte
	send := func(msgs []Message) error {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancel()
		for _, msg := range msgs {
			buf = appendWS(buf[:0], msg)
			if err := c.Write(wctx, websocket.MessageText, buf); err != nil {
				return fmt.Errorf("websocket write: %w", err)
			}
		}
		sent.Add(float64(len(msgs)))
		return nil
	}
	if err := Feed(ctx, s.table, m, since, resume, s.opts(), send); err == nil {
		_ = c.Close(websocket.StatusNormalClosure, "reconnect to resume")
	}
}

func appendWS(b []byte, m Message) []byte {
	b = append(b, `{"event":"`...)
	b = append(b, m.Kind...)
	b = append(b, '"')
	if m.ID > 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, m.ID, 10)
	}
	b = append(b, `,"data":`...)
	b = append(b, m.Data...)
	return append(b, '}')
}
