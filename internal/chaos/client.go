package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// client sends requests as a real client would: each attempt with a
// timeout, retried with exponential backoff (100 ms doubling to 2 s)
// until it is answered with a status the caller accepts or a final one,
// or giveUp has passed.
type client struct {
	http   *http.Client
	giveUp time.Duration
}

func newClient(giveUp time.Duration) *client {
	return &client{http: &http.Client{Timeout: 15 * time.Second}, giveUp: giveUp}
}

// outcome of a request after its retries.
type outcome struct {
	status   int // last status, 0: no answer
	attempts int
	body     []byte
}

// do sends method url with body (JSON) and headers until ok(status)
// holds or the status is final (4xx other than 404, 408, 409, 429).
func (c *client) do(ctx context.Context, method, url string, body []byte, hdr map[string]string, ok func(int) bool) outcome {
	var o outcome
	wait := 100 * time.Millisecond
	deadline := time.Now().Add(c.giveUp)
	for ctx.Err() == nil {
		o.attempts++
		o.status, o.body = c.once(ctx, method, url, body, hdr)
		if ok(o.status) || final(o.status) || time.Now().After(deadline) {
			return o
		}
		sleep(ctx, wait)
		wait = min(2*wait, 2*time.Second)
	}
	return o
}

func (c *client) once(ctx context.Context, method, url string, body []byte, hdr map[string]string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

// final: a 4xx that retrying cannot change (Knative's rule).
func final(status int) bool {
	switch status {
	case 404, 408, 409, 429:
		return false
	}
	return status >= 400 && status < 500
}

func is2xx(s int) bool { return s >= 200 && s < 300 }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("chaos: json: %v", err))
	}
	return b
}

// refusals keeps the first requests the system refused (after their
// retries), for the report.
type refusals struct {
	mu   sync.Mutex
	list []string
}

func (r *refusals) add(what string, o outcome) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) < 10 {
		b := o.body
		if len(b) > 200 {
			b = b[:200]
		}
		r.list = append(r.list, fmt.Sprintf("%s: status %d after %d attempts %s", what, o.status, o.attempts, bytes.TrimSpace(b)))
	}
}

// List is what was kept.
func (r *refusals) List() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}
