package cdc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/counters/cdc"
	"github.com/jobflow/jobflow/pkg/counters/cdc/envelope"
	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/counters/dialogs"
)

const (
	usersTopic    = "dialogs.public.users"
	messagesTopic = "dialogs.public.messages"
)

type record struct {
	topic string
	key   string
	env   envelope.Envelope
	ct    string
	msg   *sarama.ConsumerMessage
}

// collector reads every partition of the topics from the start.
type collector struct {
	mu   sync.Mutex
	recs []record
	t    *testing.T
}

func collect(t *testing.T, brokers []string, topics ...string) *collector {
	return collectWith(t, brokers, countertest.SaramaConfig(), topics...)
}

// collectWith reads with the given client config (its isolation level).
func collectWith(t *testing.T, brokers []string, sc *sarama.Config, topics ...string) *collector {
	c := &collector{t: t}
	consumer, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consumer.Close() })
	for _, topic := range topics {
		parts, err := consumer.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for m := range pc.Messages() {
					var e envelope.Envelope
					if err := json.Unmarshal(m.Value, &e); err != nil {
						t.Errorf("record value is not an envelope: %v: %s", err, m.Value)
					}
					r := record{topic: m.Topic, key: string(m.Key), env: e, msg: m}
					for _, h := range m.Headers {
						if string(h.Key) == "content-type" {
							r.ct = string(h.Value)
						}
					}
					c.mu.Lock()
					c.recs = append(c.recs, r)
					c.mu.Unlock()
				}
			}()
		}
	}
	return c
}

func (c *collector) wait(n int, d time.Duration) []record {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		got := append([]record(nil), c.recs...)
		c.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				c.t.Fatalf("got %d records, want %d", len(got), n)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startCDC(t *testing.T, cfg cdc.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := cdc.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !a.Ready() {
		select {
		case err := <-done:
			t.Fatalf("cdc ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("cdc not ready after 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("cdc: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// testConfig names the slot after the test's database: slot names are
// global to the server, which other tests (and the lead's) share.
func testConfig(dialogsURL string, brokers []string) cdc.Config {
	u, _ := url.Parse(dialogsURL)
	slot := strings.TrimPrefix(u.Path, "/")
	return cdc.Config{DialogsURL: dialogsURL, Brokers: brokers, TopicPrefix: "dialogs",
		Tables: []string{"public.users", "public.messages"}, Slot: slot, Publication: "jobflow_cdc",
		StatusInterval: 100 * time.Millisecond, TableWait: 10 * time.Second}
}

func TestStreamsDebeziumEvents(t *testing.T) {
	ctx := context.Background()
	dURL := countertest.Database(t, "dialogs_t")
	store, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	brokers := countertest.Kafka(t, 3, usersTopic, messagesTopic)
	stop := startCDC(t, testConfig(dURL, brokers))

	a, _ := store.CreateUser(ctx, "alice")
	b, _ := store.CreateUser(ctx, "bob")
	m1, err := store.Send(ctx, a.ID, b.ID, "hello")
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := store.Send(ctx, a.ID, b.ID, "again")
	if _, _, err := store.MarkRead(ctx, m1.ID); err != nil {
		t.Fatal(err)
	}
	// A rolled back transaction is never streamed.
	tx, _ := store.Pool.Begin(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO messages (sender_id, recipient_id, body) VALUES ($1, $2, 'rolled back')`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if err := store.Delete(ctx, m2.ID); err != nil {
		t.Fatal(err)
	}

	c := collect(t, brokers, usersTopic, messagesTopic)
	c.wait(6, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	recs := c.wait(6, 0)
	if len(recs) != 6 {
		t.Fatalf("got %d records, want 6", len(recs))
	}
	byOp := map[string][]record{}
	for _, r := range recs {
		if r.ct != "application/json" {
			t.Errorf("content-type %q", r.ct)
		}
		if r.env.Source.LSN <= 0 || r.env.Source.TxID <= 0 || r.env.Source.Connector != "postgresql" || r.env.Source.DB == "" || r.env.TsMs <= 0 {
			t.Errorf("source block %+v", r.env.Source)
		}
		byOp[r.topic+" "+r.env.Op] = append(byOp[r.topic+" "+r.env.Op], r)
	}
	if n := len(byOp[usersTopic+" c"]); n != 2 {
		t.Fatalf("user creates: %d", n)
	}
	if got := byOp[usersTopic+" c"][0].key; got != fmt.Sprintf(`{"id":%d}`, a.ID) && got != fmt.Sprintf(`{"id":%d}`, b.ID) {
		t.Errorf("user key %s", got)
	}
	creates := byOp[messagesTopic+" c"]
	if len(creates) != 2 {
		t.Fatalf("message creates: %d", len(creates))
	}
	var after struct {
		ID          int64  `json:"id"`
		SenderID    int64  `json:"sender_id"`
		RecipientID int64  `json:"recipient_id"`
		Body        string `json:"body"`
		Read        bool   `json:"read"`
		CreatedAt   string `json:"created_at"`
	}
	if err := json.Unmarshal(creates[0].env.After, &after); err != nil || after.RecipientID != b.ID || after.SenderID != a.ID || after.Read || after.CreatedAt == "" {
		t.Errorf("create after %s: %v", creates[0].env.After, err)
	}
	if creates[0].env.HasBefore() {
		t.Errorf("create has before %s", creates[0].env.Before)
	}
	ups := byOp[messagesTopic+" u"]
	if len(ups) != 1 {
		t.Fatalf("updates: %d", len(ups))
	}
	var before, upAfter struct{ Read bool }
	_ = json.Unmarshal(ups[0].env.Before, &before)
	_ = json.Unmarshal(ups[0].env.After, &upAfter)
	if before.Read || !upAfter.Read || ups[0].key != fmt.Sprintf(`{"id":%d}`, m1.ID) {
		t.Errorf("update: before %s after %s key %s", ups[0].env.Before, ups[0].env.After, ups[0].key)
	}
	dels := byOp[messagesTopic+" d"]
	if len(dels) != 1 || dels[0].env.HasAfter() {
		t.Fatalf("deletes: %+v", dels)
	}
	var delBefore struct {
		ID          int64 `json:"id"`
		RecipientID int64 `json:"recipient_id"`
	}
	if err := json.Unmarshal(dels[0].env.Before, &delBefore); err != nil || delBefore.ID != m2.ID || delBefore.RecipientID != b.ID {
		t.Errorf("delete before %s", dels[0].env.Before)
	}
	stop()
}

// TestResumesWithoutLoss: changes made while the source is down, and
// across several restarts, all reach Kafka; a clean stop confirms what it
// sent, so nothing is sent twice.
func TestResumesWithoutLoss(t *testing.T) {
	ctx := context.Background()
	dURL := countertest.Database(t, "dialogs_t")
	store, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	brokers := countertest.Kafka(t, 3, usersTopic, messagesTopic)
	cfg := testConfig(dURL, brokers)
	a, _ := store.CreateUser(ctx, "a") // before the slot exists: in the snapshot
	stop := startCDC(t, cfg)
	b, _ := store.CreateUser(ctx, "b")
	sent := 0
	for round := 0; round < 4; round++ {
		for i := 0; i < 50; i++ {
			if _, err := store.Send(ctx, a.ID, b.ID, fmt.Sprintf("r%d m%d", round, i)); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		stop()
		for i := 0; i < 25; i++ { // while the source is down
			if _, err := store.Send(ctx, b.ID, a.ID, "while down"); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		stop = startCDC(t, cfg)
	}
	// one big transaction
	if _, err := store.Pool.Exec(ctx, `INSERT INTO messages (sender_id, recipient_id, body) SELECT $1, $2, 'bulk' FROM generate_series(1, 500)`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	sent += 500
	c := collect(t, brokers, messagesTopic)
	c.wait(sent, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	recs := c.wait(sent, 0)
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.key]++
		if seen[r.key] == 2 {
			t.Logf("duplicate %s lsn %d tx %d: %s", r.key, r.env.Source.LSN, r.env.Source.TxID, r.env.After)
		}
	}
	var n int
	if err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || len(recs) != n {
		t.Fatalf("%d messages, %d distinct keys streamed, %d records", n, len(seen), len(recs))
	}
	stop()
	var confirmed, current string
	conn, err := pgx.Connect(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, pg_current_wal_lsn()::text FROM pg_replication_slots WHERE slot_name = $1`, cfg.Slot).Scan(&confirmed, &current); err != nil {
		t.Fatal(err)
	}
	t.Logf("slot confirmed %s, wal at %s", confirmed, current)
}
