package subscribe

import (
	"bufio"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobflow/jobflow/pkg/config/store"
)

// sseConn is a raw SSE subscriber that keeps the events it read.
type sseConn struct {
	conn   net.Conn
	mu     sync.Mutex
	events []string // "kind id"
	header string
}

func subscribeRaw(t *testing.T, addr, query string) *sseConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("GET /subscribe?" + query + " HTTP/1.1\r\nHost: t\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	s := &sseConn{conn: conn}
	r := bufio.NewReader(conn)
	var header strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("header: %v", err)
		}
		header.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	s.header = header.String()
	go func() {
		var kind, id string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = line[7:]
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case line == "" && kind != "":
				s.mu.Lock()
				s.events = append(s.events, strings.TrimSpace(kind+" "+id))
				s.mu.Unlock()
				kind, id = "", ""
			}
		}
	}()
	return s
}

func (s *sseConn) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.events, ", ")
}

func parkedNow(svc *Service) int {
	svc.hub.mu.Lock()
	defer svc.hub.mu.Unlock()
	return len(svc.hub.parked)
}

func TestParkedSubscribersGetSnapshotChangesAndHeartbeats(t *testing.T) {
	tb := store.NewTable(100)
	put(tb, 1, "a/x", "1")
	put(tb, 2, "b", "2")
	tb.MarkReady()
	svc := NewService(Config{Heartbeat: 300 * time.Millisecond, WriteTimeout: 5 * time.Second, CatchUp: time.Millisecond, ParkIdle: true}, tb)
	srv := httptest.NewServer(svc)
	defer srv.Close()
	defer svc.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	a := subscribeRaw(t, addr, "keys=a/*")
	resumed := subscribeRaw(t, addr, "keys=*&since=1")
	if !strings.Contains(a.header, "Content-Type: text/event-stream") || !strings.Contains(a.header, "Connection: close") {
		t.Fatalf("header:\n%s", a.header)
	}
	waitFor(t, "both parked", func() bool { return parkedNow(svc) == 2 })
	waitFor(t, "snapshot", func() bool { return strings.HasPrefix(a.got(), "value, ready 2") })
	waitFor(t, "resume", func() bool { return strings.HasPrefix(resumed.got(), "change 2, ready 2") })

	put(tb, 3, "b", "3")
	put(tb, 4, "a/y", "4")
	waitFor(t, "a's change", func() bool { return strings.Contains(a.got(), "change 4") })
	waitFor(t, "resumed's changes", func() bool { return strings.Contains(resumed.got(), "change 3, change 4") })
	if strings.Contains(a.got(), "change 3") {
		t.Fatalf("a got a key it did not ask for: %s", a.got())
	}
	// Idle: heartbeats at the head.
	waitFor(t, "heartbeat", func() bool { return strings.Contains(a.got(), "heartbeat 4") })
}

func TestAParkedSubscriberThatLeftIsDropped(t *testing.T) {
	tb := store.NewTable(100)
	put(tb, 1, "k", "1")
	tb.MarkReady()
	svc := NewService(Config{Heartbeat: 100 * time.Millisecond, WriteTimeout: 5 * time.Second, CatchUp: time.Millisecond, ParkIdle: true}, tb)
	srv := httptest.NewServer(svc)
	defer srv.Close()
	defer svc.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	stays, leaves := subscribeRaw(t, addr, "keys=*"), subscribeRaw(t, addr, "keys=*")
	waitFor(t, "both parked", func() bool { return parkedNow(svc) == 2 })
	leaves.conn.Close()
	waitFor(t, "the one that left is dropped", func() bool { return parkedNow(svc) == 1 })
	put(tb, 2, "k", "2")
	waitFor(t, "the other still served", func() bool { return strings.Contains(stays.got(), "change 2") })
}

func TestASlowParkedSubscriberLeavesTheHubAndSlowsNobody(t *testing.T) {
	tb := store.NewTable(5)
	put(tb, 1, "k", "1")
	tb.MarkReady()
	// The write timeout is longer than the fast one's wait for a change:
	// were the hub waiting on the slow one, the fast one would not get it.
	svc := NewService(Config{Heartbeat: time.Hour, WriteTimeout: time.Minute, CatchUp: time.Millisecond, ParkIdle: true}, tb)
	srv := httptest.NewServer(svc)
	defer srv.Close()
	defer svc.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	fast := subscribeRaw(t, addr, "keys=*")
	// A subscriber that never reads: its socket buffers fill up.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("GET /subscribe?keys=* HTTP/1.1\r\nHost: t\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both parked", func() bool { return parkedNow(svc) == 2 })

	big := strconv.Quote(strings.Repeat("x", 64<<10))
	for i := int64(2); i <= 80; i++ {
		put(tb, i, "k", big)
		waitFor(t, "the fast one has change "+strconv.FormatInt(i, 10), func() bool {
			return strings.Contains(fast.got(), "change "+strconv.FormatInt(i, 10))
		})
	}
	if svc.hub.releases.Load() == 0 {
		t.Fatal("no write found the slow subscriber's socket full: the test did not test it")
	}
	// The slow one, reading at last, is resynchronised: a reset, then the
	// current value; never a silent gap.
	r := bufio.NewReader(slow)
	deadline := time.Now().Add(20 * time.Second)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "event: reset") || !strings.Contains(seen.String(), "ready\nid: 80") {
		_ = slow.SetReadDeadline(deadline)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("slow subscriber: %v; read:\n%s", err, seen.String())
		}
		if !strings.HasPrefix(line, "data: ") {
			seen.WriteString(line)
		}
	}
}
