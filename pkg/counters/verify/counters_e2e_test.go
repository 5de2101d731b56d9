package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/counters/dialogs"
	"github.com/jobflow/jobflow/pkg/counters/verify"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

var topics = []string{"dialogs.public.messages", "dialogs.public.users"}

// proc is a binary the test starts, SIGKILLs and starts again.
type proc struct {
	t    *testing.T
	name string
	bin  string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	p.out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
}

// kill sends SIGKILL: no clean shutdown, no final confirmation.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	p.cmd = nil
}

func build(t *testing.T, dir, pkg, out string) string {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func waitHTTP(t *testing.T, u string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s", u, d)
}

func startSource(t *testing.T, brokers []string, target string) (stop func(), src *kafkasource.Source) {
	t.Helper()
	src, err := kafkasource.New(kafkasource.Config{
		Name: "counter-source", Namespace: "jobflow", Brokers: brokers, Topics: topics,
		Group: "counter", InitialOffset: "earliest", Ordered: false, MaxInFlight: 1000,
		CommitInterval: 5 * time.Second, // Knative's default: a killed counter sees up to 5 s redelivered
		Retrier: kafkasource.Retrier{Target: target, MaxStallWait: time.Second,
			Policy: delivery.Policy{Retry: 10, Backoff: delivery.Exponential, Delay: 200 * time.Millisecond, Timeout: 30 * time.Second}},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	select {
	case <-src.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("kafkasource not ready")
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop, src
}

func metric(t *testing.T, base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestCountersEndToEnd: 10,000 messages and 6,000 reads (and some deletes)
// from concurrent writers flow dialogs -> CDC source -> Kafka ->
// KafkaSource -> counter function -> counters database, while the counter
// function is SIGKILLed and restarted and the CDC source is SIGKILLed (so
// it re-sends changes Kafka already has) and restarted. The counters end
// with zero drift; then the consumer group is reset to the beginning of the
// topics, everything is delivered again, and there is still zero drift.
func TestCountersEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx := context.Background()
	dialogsURL := countertest.Database(t, "dialogs_t")
	countersURL := countertest.Database(t, "counters_t")
	brokers := countertest.Kafka(t, 4, topics...)
	root, _ := filepath.Abs("../../..")
	bin := t.TempDir()
	counterBin := build(t, filepath.Join(root, "functions/counter"), "./cmd/counter", filepath.Join(bin, "counter"))
	cdcBin := build(t, root, "./cmd/jobflow-cdc", filepath.Join(bin, "jobflow-cdc"))

	store, err := dialogs.Open(ctx, dialogsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	u, _ := url.Parse(dialogsURL)
	slot := strings.TrimPrefix(u.Path, "/")
	cdcPort := testenv.FreePort(t)
	cdc := &proc{t: t, name: "jobflow-cdc", bin: cdcBin, env: []string{
		"JOBFLOW_DIALOGS_URL=" + dialogsURL, "CDC_KAFKA_BOOTSTRAP_SERVERS=" + strings.Join(brokers, ","),
		"CDC_SLOT_NAME=" + slot, "CDC_STATUS_INTERVAL=200ms", fmt.Sprintf("CDC_HTTP_ADDR=127.0.0.1:%d", cdcPort), "LOG_LEVEL=warn"}}
	cdc.start()
	t.Cleanup(cdc.stop)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/health/readiness", cdcPort), 30*time.Second)

	port := testenv.FreePort(t)
	counterURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	counter := &proc{t: t, name: "counter", bin: counterBin, env: []string{
		"JOBFLOW_COUNTERS_URL=" + countersURL, "PORT=" + strconv.Itoa(port), "LOG_LEVEL=error",
		"COUNTER_BATCH_MAX_ITEMS=1000"}}
	counter.start()
	t.Cleanup(counter.stop)
	waitHTTP(t, counterURL+"/health/readiness", 30*time.Second)
	stopSource, src := startSource(t, brokers, counterURL)

	// Users, then concurrent writers and readers.
	const nUsers, nMessages, nReads, nDeletes, writers, readers = 40, 10_000, 6_000, 300, 8, 4
	users := make([]int64, nUsers)
	for i := range users {
		u, err := store.CreateUser(ctx, fmt.Sprintf("user%d", i))
		if err != nil {
			t.Fatal(err)
		}
		users[i] = u.ID
	}
	created := make(chan int64, nMessages)
	var sent, reads, deletes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := w; i < nMessages; i += writers {
				from, to := users[r.IntN(nUsers)], users[r.IntN(nUsers)]
				for to == from {
					to = users[r.IntN(nUsers)]
				}
				m, err := store.Send(ctx, from, to, fmt.Sprintf("message %d", i))
				if err != nil {
					errs <- err
					return
				}
				sent.Add(1)
				created <- m.ID
			}
		}()
	}
	var rwg sync.WaitGroup
	for rd := 0; rd < readers; rd++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for id := range created {
				switch {
				case reads.Add(1) <= nReads:
					if _, changed, err := store.MarkRead(ctx, id); err != nil || !changed {
						errs <- fmt.Errorf("mark %d read: changed=%v %v", id, changed, err)
						return
					}
				case deletes.Add(1) <= nDeletes:
					if err := store.Delete(ctx, id); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}

	// Chaos while the writers run.
	waitFor := func(n int64) {
		for sent.Load() < n {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(3000)
	counter.kill()
	t.Logf("counter SIGKILLed at %d messages sent", sent.Load())
	time.Sleep(500 * time.Millisecond) // deliveries fail and are retried meanwhile
	counter.start()
	waitFor(6000)
	cdc.kill()
	t.Logf("CDC source SIGKILLed at %d messages sent", sent.Load())
	time.Sleep(300 * time.Millisecond)
	cdc.start()
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/health/readiness", cdcPort), 30*time.Second)

	wg.Wait()
	close(created)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wrote := time.Since(start)
	if reads.Load() < nReads {
		t.Fatalf("only %d reads", reads.Load())
	}

	var out bytes.Buffer
	rep, err := verify.Counters(ctx, verify.CountersOptions{DialogsURL: dialogsURL, CountersURL: countersURL, Wait: 90 * time.Second}, &out)
	converged := time.Since(start)
	t.Logf("verify after the run:\n%s", out.String())
	if err != nil {
		t.Fatalf("after the run: %v", err)
	}
	if rep.Messages != nMessages-nDeletes {
		t.Fatalf("source has %d messages, want %d", rep.Messages, nMessages-nDeletes)
	}
	records := topicRecords(t, brokers)
	applied := metric(t, counterURL, `jobflow_counter_events_total{result="applied"}`)
	t.Logf("writes took %s, counters converged %s after the start; %d records in the topics; source delivered %d, stats %+v",
		wrote.Round(time.Millisecond), converged.Round(time.Millisecond), records, src.Stats().Delivered, src.Stats())
	changes := int64(nUsers + nMessages + nReads + nDeletes)
	if records < changes {
		t.Fatalf("%d records in the topics, fewer than the %d changes made", records, changes)
	}
	t.Logf("the CDC source re-sent %d changes after its SIGKILL; counter (restarted) applied %.0f events since its restart", records-changes, applied)

	// Replay: reset the consumer group to the beginning of the topics.
	stopSource()
	resetGroup(t, brokers, "counter")
	before := metric(t, counterURL, `jobflow_counter_events_total{result="duplicate"}`)
	_, src2 := startSource(t, brokers, counterURL)
	deadline := time.Now().Add(90 * time.Second)
	for src2.Stats().Delivered < records && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := src2.Stats().Delivered; got < records {
		t.Fatalf("replay delivered %d of %d records", got, records)
	}
	dups := metric(t, counterURL, `jobflow_counter_events_total{result="duplicate"}`) - before
	out.Reset()
	if _, err := verify.Counters(ctx, verify.CountersOptions{DialogsURL: dialogsURL, CountersURL: countersURL}, &out); err != nil {
		t.Fatalf("after the replay: %v\n%s", err, out.String())
	}
	t.Logf("replay: %d records delivered again, %.0f recognised as duplicates; verify:\n%s", src2.Stats().Delivered, dups, out.String())
	if dups < float64(records) {
		t.Fatalf("replay: only %.0f of %d records were recognised as duplicates", dups, records)
	}

	// The query side agrees with the source for one user.
	pool, err := pgxpool.New(ctx, dialogsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var total, unread int64
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE NOT read) FROM messages WHERE recipient_id = $1`, users[0]).Scan(&total, &unread); err != nil {
		t.Fatal(err)
	}
	t.Logf("user %d: total %d unread %d", users[0], total, unread)
}

// topicRecords counts the records in the topics (high-water marks).
func topicRecords(t *testing.T, brokers []string) int64 {
	client, err := sarama.NewClient(brokers, countertest.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var n int64
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			hi, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			lo, err := client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			n += hi - lo
		}
	}
	return n
}

// resetGroup moves the group's committed offsets back to the beginning of
// every partition (kafka-consumer-groups --reset-offsets --to-earliest).
func resetGroup(t *testing.T, brokers []string, group string) {
	client, err := sarama.NewClient(brokers, countertest.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			pom, err := om.ManagePartition(topic, p)
			if err != nil {
				t.Fatal(err)
			}
			oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			pom.ResetOffset(oldest, "")
			_ = pom.Close()
		}
	}
	om.Commit()
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}
}
