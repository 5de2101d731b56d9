package subscribe

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/jobflow/jobflow/pkg/config/change"
	"github.com/jobflow/jobflow/pkg/config/store"
)

func put(t *store.Table, seq int64, key, value string) {
	t.Apply(seq, &change.Change{Key: key, Value: json.RawMessage(value), Revision: fmt.Sprintf("r%d", seq)})
}

// recorder is a subscriber's send that keeps what it got.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
	gate chan struct{} // while open (not closed), send blocks: a slow client
}

func (r *recorder) send(ms []Message) error {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, ms...)
	return nil
}

func (r *recorder) kinds() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.Kind != KindHeartbeat {
			out = append(out, m.Kind)
		}
	}
	return strings.Join(out, " ")
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestASlowSubscriberSlowsNobodyAndIsResynchronised(t *testing.T) {
	tb := store.NewTable(3)
	put(tb, 1, "k", "0")
	all, _ := ParseKeys("*")
	opts := Options{Heartbeat: time.Hour, CatchUp: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast, slow := &recorder{}, &recorder{}
	go func() { _ = Feed(ctx, tb, all, 0, false, opts, fast.send) }()
	waitFor(t, "fast snapshot", func() bool { return fast.kinds() == "value ready" })
	slow.gate = make(chan struct{})
	go func() { _ = Feed(ctx, tb, all, 0, false, opts, slow.send) }() // blocked in its first send

	// The fast one has every change while the slow one is still stuck.
	for i := int64(2); i <= 11; i++ {
		put(tb, i, "k", fmt.Sprint(i))
		waitFor(t, "fast has the change", func() bool { return strings.Count(fast.kinds(), "change") == int(i-1) })
	}
	if slow.kinds() != "" {
		t.Fatalf("slow got %s while blocked", slow.kinds())
	}
	close(slow.gate)
	// The slow one: its snapshot (taken at 1), then, 10 changes on with
	// only 3 retained, a reset and a fresh snapshot: never a silent gap.
	waitFor(t, "slow resynchronised", func() bool { return slow.kinds() == "value ready reset value ready" })
	slow.mu.Lock()
	last := slow.msgs[len(slow.msgs)-2]
	slow.mu.Unlock()
	if !strings.Contains(string(last.Data), `"value":11`) {
		t.Fatalf("snapshot after reset: %s", last.Data)
	}
	// Back in step: it gets the next change like the others.
	put(tb, 12, "k", "12")
	waitFor(t, "slow live again", func() bool { return strings.HasSuffix(slow.kinds(), "ready change") })
}

func TestWebSocketSnapshotResumeAndChanges(t *testing.T) {
	tb := store.NewTable(100)
	put(tb, 1, "a/x", "1")
	put(tb, 2, "b", "2")
	tb.MarkReady()
	srv := httptest.NewServer(NewService(Config{Heartbeat: time.Hour, WriteTimeout: 5 * time.Second, CatchUp: time.Millisecond}, tb))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	read := func(c *websocket.Conn) map[string]any {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?keys=a/*"
	c, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if m := read(c); m["event"] != KindValue || m["data"].(map[string]any)["key"] != "a/x" {
		t.Fatalf("first: %v", m)
	}
	if m := read(c); m["event"] != KindReady || m["id"].(float64) != 2 {
		t.Fatalf("ready: %v", m)
	}
	put(tb, 3, "b", "3")
	put(tb, 4, "a/y", "4")
	if m := read(c); m["event"] != KindChange || m["id"].(float64) != 4 {
		t.Fatalf("change: %v", m)
	}
	// Resume with since=: only what came after.
	c2, _, err := websocket.Dial(ctx, ws+"&since=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if m := read(c2); m["event"] != KindChange || m["id"].(float64) != 4 {
		t.Fatalf("resumed: %v", m)
	}
	if m := read(c2); m["event"] != KindReady {
		t.Fatalf("resumed ready: %v", m)
	}
}
