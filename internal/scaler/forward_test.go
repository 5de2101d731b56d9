package scaler

import (
	"bytes"
	"net/http"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

// Forwarding an answer allocates no copy buffer of its own: one per
// answer was the engine's largest garbage per forwarded request.
func TestCopyFlushReusesItsBuffers(t *testing.T) {
	w := discardWriter{h: http.Header{}}
	body := bytes.Repeat([]byte("x"), 100)
	r := bytes.NewReader(body)
	copyFlush(w, r, false) // the pool's first buffer
	var n int64
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		n, _ = copyFlush(w, r, false)
	})
	if n != int64(len(body)) {
		t.Fatalf("copied %d bytes, want %d", n, len(body))
	}
	if allocs >= 1 {
		t.Errorf("%.1f allocations per answer copied, want none", allocs)
	}
}
