package subscribe_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/coder/websocket"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/config/change"
	"github.com/jobflow/jobflow/pkg/config/store"
	"github.com/jobflow/jobflow/pkg/config/subscribe"
)

// TestMain runs the benchmark's server when the benchmark starts this
// test binary as its child: the subscription service in a process of its
// own, so that its memory is measured alone.
func TestMain(m *testing.M) {
	if brokers := os.Getenv("CONFIG_BENCH_CHILD_BROKERS"); brokers != "" {
		os.Exit(benchChild(strings.Split(brokers, ",")))
	}
	os.Exit(m.Run())
}

func benchChild(brokers []string) int {
	table := store.NewTable(10000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &store.Follower{Brokers: brokers, Topic: "config-changes", Table: table, Log: slog.New(slog.DiscardHandler)}
	go func() { _ = f.Run(ctx) }()
	<-table.Ready()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	svc := subscribe.NewService(subscribe.Config{Heartbeat: 15 * time.Second, WriteTimeout: 10 * time.Second, CatchUp: 2 * time.Second,
		ParkIdle: os.Getenv("CONFIG_BENCH_PARK") == "true"}, table)
	go func() { _ = http.Serve(ln, svc) }()
	fmt.Println("ADDR", ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	return 0
}

func benchN(def int) int {
	if v, err := strconv.Atoi(os.Getenv("CONFIG_BENCH_SUBSCRIBERS")); err == nil && v > 0 {
		return v
	}
	return def
}

// subscriber is one raw SSE connection that checks its sequence: every
// change exactly once, in order.
type subscriber struct {
	close    func()
	last     atomic.Int64
	ready    atomic.Int64 // times a ready event came
	missed   atomic.Int64
	repeated atomic.Int64
	resets   atomic.Int64
	// receipts: when each change came, written by the subscriber's reader
	// alone, before last says it came (so a reader of last may read them).
	receipts []receipt
}

type receipt struct {
	seq int64
	at  time.Time
}

// record is a receipts callback keeping the times on the subscriber (no
// lock shared by 10,000 readers: the bench measures the server).
func (s *subscriber) record(seq int64) { s.receipts = append(s.receipts, receipt{seq, time.Now()}) }

func dial(addr string, since int64, s *subscriber, receipts func(seq int64)) error {
	conn, err := spreadDial(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	req := "GET /subscribe?keys=* HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
	if since > 0 {
		req += "Last-Event-ID: " + strconv.FormatInt(since, 10) + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		conn.Close()
		return err
	}
	s.close = func() { conn.Close() }
	go func() {
		r := bufio.NewReaderSize(conn, 512)
		var event string
		var id int64
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			l := strings.TrimRight(string(line), "\r\n")
			switch {
			case strings.HasPrefix(l, "event: "):
				event = l[7:]
			case strings.HasPrefix(l, "id: "):
				id, _ = strconv.ParseInt(l[4:], 10, 64)
			case l == "":
				s.on(event, id, receipts)
				event, id = "", 0
			}
		}
	}()
	return nil
}

// on checks one message: every change once, in order.
func (s *subscriber) on(event string, id int64, receipts func(seq int64)) {
	switch event {
	case "change":
		switch last := s.last.Load(); {
		case id <= last:
			s.repeated.Add(1)
		case id > last+1:
			s.missed.Add(id - last - 1)
		}
		receipts(id)
		if id > s.last.Load() {
			s.last.Store(id)
		}
	case "ready":
		if id > s.last.Load() {
			s.last.Store(id)
		}
		s.ready.Add(1)
	case "reset":
		s.resets.Add(1)
	}
}

// dialWS subscribes over WebSocket (resuming with since=).
func dialWS(addr string, since int64, s *subscriber, receipts func(seq int64)) error {
	u := "ws://" + addr + "/ws?keys=*"
	if since > 0 {
		u += "&since=" + strconv.FormatInt(since, 10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: wsClient})
	if err != nil {
		return err
	}
	s.close = func() { c.CloseNow() }
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var m struct {
				Event string `json:"event"`
				ID    int64  `json:"id"`
			}
			if json.Unmarshal(b, &m) == nil {
				s.on(m.Event, m.ID, receipts)
			}
		}
	}()
	return nil
}

var wsClient = &http.Client{Transport: &http.Transport{DialContext: spreadDial}}

// spreadDial dials from one of 64 loopback addresses in turn: the bench
// opens tens of thousands of connections to one port in a minute (the
// subscribers, the storm's, the pollers'), more than one source address
// has ephemeral ports for while the closed ones wait in TIME_WAIT.
func spreadDial(ctx context.Context, network, addr string) (net.Conn, error) {
	i := dials.Add(1)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%64))}}
	return d.DialContext(ctx, network, addr)
}

var dials atomic.Int64

func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func produce(tb testing.TB, p sarama.SyncProducer, key, value, rev string) {
	ev, err := change.Change{Key: key, Value: json.RawMessage(value), Revision: rev}.Event("/bench")
	if err != nil {
		tb.Fatal(err)
	}
	pm := &sarama.ProducerMessage{Topic: "config-changes"}
	if err := kafka_sarama.WriteProducerMessage(context.Background(), binding.ToMessage(&ev), pm); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := p.SendMessage(pm); err != nil {
		tb.Fatal(err)
	}
}

func waitAll(tb testing.TB, subs []*subscriber, what string, d time.Duration, ok func(*subscriber) bool) time.Duration {
	start := time.Now()
	for {
		n := 0
		for _, s := range subs {
			if ok(s) {
				n++
			}
		}
		if n == len(subs) {
			return time.Since(start)
		}
		if time.Since(start) > d {
			tb.Fatalf("%s: %d of %d after %s", what, n, len(subs), d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// BenchmarkSubscribers: N SSE subscribers (CONFIG_BENCH_SUBSCRIBERS,
// 10,000) on one instance of the subscription service, which reads the
// topic from a Kafka-protocol broker: its memory per subscriber, the time
// from a change in Kafka to its receipt by every subscriber, a reconnect
// storm (all drop, changes meanwhile, all resume), and the polling design
// beside it (the same clients asking every second). Two runs side by
// side: idle subscribers parked (the default, CONFIG_PARK_IDLE=true) and
// net/http's goroutine per subscriber; and the same over WebSocket (a
// goroutine per subscriber always). The polling design runs once, beside
// the first.
func BenchmarkSubscribers(b *testing.B) {
	b.Run("sse-parked", func(b *testing.B) { benchSubscribers(b, dial, true, true) })
	b.Run("sse-goroutine-each", func(b *testing.B) { benchSubscribers(b, dial, false, false) })
	b.Run("websocket", func(b *testing.B) { benchSubscribers(b, dialWS, false, false) })
}

type dialer func(addr string, since int64, s *subscriber, receipts func(seq int64)) error

func benchSubscribers(b *testing.B, dial dialer, park, poll bool) {
	n := benchN(10000)
	brokers := testenv.Kafka(b, 1, "config-changes")
	prod := testenv.Producer(b, brokers)
	for i := 0; i < 50; i++ {
		produce(b, prod, fmt.Sprintf("svc/%d/limit", i), strconv.Itoa(i), "seed")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CONFIG_BENCH_CHILD_BROKERS="+strings.Join(brokers, ","), fmt.Sprintf("CONFIG_BENCH_PARK=%t", park))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		b.Fatalf("child: %q %v", line, err)
	}
	time.Sleep(200 * time.Millisecond)
	base := rss(cmd.Process.Pid)

	const changes = 20
	subs := make([]*subscriber, n)
	connectStart := time.Now()
	for i := range subs {
		subs[i] = &subscriber{}
		for try := 0; ; try++ {
			if err = dial(addr, 0, subs[i], subs[i].record); err == nil || try == 20 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			b.Fatalf("subscriber %d: %v", i, err)
		}
	}
	waitAll(b, subs, "snapshot", 120*time.Second, func(s *subscriber) bool { return s.ready.Load() == 1 })
	connected := time.Since(connectStart)
	time.Sleep(time.Second)
	perSub := float64(rss(cmd.Process.Pid)-base) / float64(n)
	b.ReportMetric(perSub, "B/subscriber")
	b.Logf("%d subscribers connected with their snapshot in %s; server RSS %d MiB (+%d MiB: %.1f KiB per subscriber)",
		n, connected.Round(time.Millisecond), rss(cmd.Process.Pid)>>20, (rss(cmd.Process.Pid)-base)>>20, perSub/1024)

	// Change → every subscriber.
	produced := map[int64]time.Time{}
	head := subs[0].last.Load()
	var all, lastOf []time.Duration
	for c := 1; c <= changes; c++ {
		produce(b, prod, "svc/0/limit", strconv.Itoa(1000+c), fmt.Sprintf("r%d", c))
		seq := head + int64(c)
		produced[seq] = time.Now()
		waitAll(b, subs, "change", 60*time.Second, func(s *subscriber) bool { return s.last.Load() >= seq })
		time.Sleep(50 * time.Millisecond)
	}
	worst := map[int64]time.Duration{}
	for _, s := range subs {
		for _, r := range s.receipts {
			if at, ok := produced[r.seq]; ok {
				d := r.at.Sub(at)
				all = append(all, d)
				worst[r.seq] = max(worst[r.seq], d)
			}
		}
	}
	for _, w := range worst {
		lastOf = append(lastOf, w)
	}
	b.ReportMetric(float64(pct(lastOf, 0.5).Microseconds())/1000, "ms-last-p50")
	b.ReportMetric(float64(pct(lastOf, 0.99).Microseconds())/1000, "ms-last-p99")
	b.Logf("change in Kafka → last of %d subscribers: p50 %s p99 %s (each receipt: p50 %s p99 %s; %d changes)",
		n, pct(lastOf, 0.5).Round(time.Microsecond), pct(lastOf, 0.99).Round(time.Microsecond),
		pct(all, 0.5).Round(time.Microsecond), pct(all, 0.99).Round(time.Microsecond), changes)

	// Reconnect storm: all drop, 10 changes meanwhile, all reconnect at once.
	for _, s := range subs {
		s.close()
	}
	before := make([]int64, n)
	for i, s := range subs {
		before[i] = s.last.Load()
	}
	for c := 1; c <= 10; c++ {
		produce(b, prod, fmt.Sprintf("svc/%d/limit", c), "7", fmt.Sprintf("storm%d", c))
	}
	target := head + changes + 10
	storm := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fresh := &subscriber{}
			fresh.last.Store(before[i])
			for try := 0; try < 50; try++ {
				if err := dial(addr, before[i], fresh, func(int64) {}); err == nil {
					subs[i] = fresh
					return
				}
				time.Sleep(time.Duration(10+try*10) * time.Millisecond)
			}
			failed.Add(1)
			_ = s
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d subscribers could not reconnect", failed.Load())
	}
	took := waitAll(b, subs, "resume", 60*time.Second, func(s *subscriber) bool { return s.last.Load() >= target && s.ready.Load() == 1 })
	var missed, repeated, resets int64
	for _, s := range subs {
		missed, repeated, resets = missed+s.missed.Load(), repeated+s.repeated.Load(), resets+s.resets.Load()
	}
	took += time.Since(storm) - took
	b.ReportMetric(took.Seconds(), "s-storm")
	b.Logf("reconnect storm: %d resumed in %s; missed %d, repeated %d, resets %d", n, took.Round(time.Millisecond), missed, repeated, resets)
	if missed+repeated+resets > 0 {
		b.Errorf("a resume must miss nothing and repeat nothing")
	}
	for _, s := range subs {
		s.close()
	}
	if !poll {
		return
	}

	// The polling design: the same clients asking for the values every second.
	pollFor := 5 * time.Second
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0, DialContext: spreadDial}}
	var requests, staleSum, staleN atomic.Int64
	var changedAt, pollErrs atomic.Int64
	var seen sync.Map
	ctx, cancel := context.WithTimeout(context.Background(), pollFor)
	pollStart := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			t := time.NewTimer(time.Duration(i) * time.Second / time.Duration(n)) // spread over a second
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				resp, err := client.Get("http://" + addr + "/values?keys=svc/0/*")
				if err != nil && ctx.Err() == nil && pollErrs.Add(1) == 1 {
					b.Logf("poll: %v", err)
				}
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					requests.Add(1)
					if at := changedAt.Load(); at > 0 && strings.Contains(string(body), `"value":4242`) {
						if _, dup := seen.LoadOrStore(i, true); !dup {
							staleSum.Add(time.Now().UnixNano() - at)
							staleN.Add(1)
						}
					}
				}
				t.Reset(time.Second)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	produce(b, prod, "svc/0/limit", "4242", "poll")
	changedAt.Store(time.Now().UnixNano())
	<-ctx.Done()
	rate := float64(requests.Load()) / time.Since(pollStart).Seconds()
	stale := time.Duration(0)
	if staleN.Load() > 0 {
		stale = time.Duration(staleSum.Load() / staleN.Load())
	}
	b.ReportMetric(rate, "poll-req/s")
	if pollErrs.Load() > 0 {
		b.Logf("%d polls failed", pollErrs.Load())
	}
	b.Logf("polling every second: %.0f requests/s to the server (subscriptions: 0 when nothing changes); a change seen after %s on average by %d of %d clients",
		rate, stale.Round(time.Millisecond), staleN.Load(), n)
	cancel()
	for i := 0; i < b.N; i++ {
		_ = i // one run measures everything above
	}
}
