package scaler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A WebSocket goes through the activator: held until an instance is
// ready, then both ways for as long as it lasts, counted in flight.
func TestActivatorJoinsAWebSocketToItsInstance(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo "), b...)); err != nil {
				return
			}
		}
	}))
	defer echo.Close()
	u, _ := url.Parse(echo.URL)
	b := newFakeBackends()
	a, au := serveActivator(t, b, time.Minute, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		time.Sleep(100 * time.Millisecond) // held meanwhile
		b.ready(&fakeLease{addr: u.Host})
	}()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(au, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.heldTotal.Load() != 1 {
		t.Errorf("held %d, want 1", a.heldTotal.Load())
	}
	for _, msg := range []string{"one", "two"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo "+msg {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	if n := inflight(a); n != 1 {
		t.Errorf("in flight while open: %v, want 1", n)
	}
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "released", func() bool { return inflight(a) == 0 })
}

func inflight(a *activator) int {
	a.load.mu.Lock()
	defer a.load.mu.Unlock()
	return a.load.n
}
