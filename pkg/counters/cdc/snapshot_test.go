package cdc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/pkg/counters/cdc"
	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/counters/dialogs"
	"github.com/jobflow/jobflow/pkg/counters/rebuild"
	"github.com/jobflow/jobflow/pkg/counters/verify"
)

// seed fills a dialogs database: users, messages between them, some read,
// some deleted. It returns the users.
func seed(t *testing.T, store *dialogs.Store, users, messages int) []dialogs.User {
	t.Helper()
	ctx := context.Background()
	var us []dialogs.User
	for i := range users {
		u, err := store.CreateUser(ctx, fmt.Sprintf("user%d", i))
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	// One statement for the bulk: a third read.
	if _, err := store.Pool.Exec(ctx, `INSERT INTO messages (sender_id, recipient_id, body, read)
		SELECT ($1::bigint[])[1 + g % cardinality($1::bigint[])], ($1::bigint[])[1 + (g * 7 + 1) % cardinality($1::bigint[])],
			'seed ' || g, g % 3 = 0
		FROM generate_series(1, $2::int) g`, userIDs(us), messages); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Pool.Exec(ctx, `DELETE FROM messages WHERE id % 11 = 0`); err != nil {
		t.Fatal(err)
	}
	return us
}

func userIDs(us []dialogs.User) []int64 {
	ids := make([]int64, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

// rowCount is the number of users plus messages.
func rowCount(t *testing.T, store *dialogs.Store) int {
	t.Helper()
	var n int
	if err := store.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM messages)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// changeAfterStart makes 5 changes: a user, two messages, a read, a delete.
func changeAfterStart(t *testing.T, store *dialogs.Store, us []dialogs.User) {
	t.Helper()
	if err := change(store, us); err != nil {
		t.Fatal(err)
	}
}

func change(store *dialogs.Store, us []dialogs.User) error {
	ctx := context.Background()
	u, err := store.CreateUser(ctx, "late")
	if err != nil {
		return err
	}
	m1, err := store.Send(ctx, us[0].ID, u.ID, "after the snapshot")
	if err != nil {
		return err
	}
	if _, err := store.Send(ctx, u.ID, us[1].ID, "another"); err != nil {
		return err
	}
	if _, _, err := store.MarkRead(ctx, m1.ID); err != nil {
		return err
	}
	var old int64
	if err := store.Pool.QueryRow(ctx, `SELECT min(id) FROM messages`).Scan(&old); err != nil {
		return err
	}
	return store.Delete(ctx, old)
}

// checkSnapshot checks that recs hold exactly one "r" event per row of the
// database, all at one LSN, exactly one marked "last", and returns the LSN.
func checkSnapshot(t *testing.T, recs []record, rows int) int64 {
	t.Helper()
	perKey := map[string]int{}
	lsns := map[int64]int{}
	last := 0
	for _, r := range recs {
		if r.env.Op != "r" {
			continue
		}
		perKey[r.topic+" "+r.key]++
		lsns[r.env.Source.LSN]++
		if r.env.Source.Snapshot == "last" {
			last++
		} else if r.env.Source.Snapshot != "true" {
			t.Errorf("snapshot event with source.snapshot %q", r.env.Source.Snapshot)
		}
		if r.env.HasBefore() || !r.env.HasAfter() {
			t.Errorf("snapshot event before %s after %s", r.env.Before, r.env.After)
		}
	}
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("%s: %d snapshot events", k, n)
		}
	}
	if len(perKey) != rows {
		t.Errorf("snapshot events for %d rows, the database has %d", len(perKey), rows)
	}
	if len(lsns) != 1 || last != 1 {
		t.Errorf("snapshot LSNs %v (want one), %d events marked last (want 1)", lsns, last)
	}
	for lsn := range lsns {
		return lsn
	}
	return 0
}

// countAndVerify applies the records to a fresh counters database with the
// counter's store, then checks it with `jobflow verify counters` and
// `jobflow rebuild counters` (which reads the topics itself).
func countAndVerify(t *testing.T, recs []record, dURL string, brokers []string) {
	t.Helper()
	ctx := context.Background()
	cURL := countertest.Database(t, "snap_counters")
	store, err := counter.Open(ctx, cURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var items []counter.Item
	for _, r := range recs {
		e, err := kafkasource.ToEvent(ctx, r.msg, rebuild.Namespace, rebuild.Source)
		if err != nil {
			t.Fatal(err)
		}
		it, err := counter.ItemOf(*e, counter.DefaultTables)
		if err != nil {
			t.Fatalf("%s %s: %v", r.topic, r.key, err)
		}
		if it != nil {
			items = append(items, *it)
		}
	}
	if _, err := store.Apply(ctx, items); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := verify.Counters(ctx, verify.CountersOptions{DialogsURL: dURL, CountersURL: cURL}, &out); err != nil {
		t.Fatalf("verify counters: %v\n%s", err, out.String())
	}
	diff, err := rebuild.Counters(ctx, rebuild.Options{Brokers: brokers, CountersURL: cURL}, &out)
	if err != nil || !diff.Equal() {
		diff.Print(&out, "counters", 0)
		t.Fatalf("rebuild counters: %v %+v\n%s", err, diff, out.String())
	}
}

// settle waits for n records, then a moment more for any extra.
func (c *collector) settle(n int) []record {
	c.wait(n, 60*time.Second)
	time.Sleep(time.Second)
	return c.wait(n, 0)
}

// TestInitialSnapshot: a database with rows before the source starts; the
// topics hold exactly one "r" per row, then the changes made afterwards as
// c/u/d, and counters applied from them equal the database.
func TestInitialSnapshot(t *testing.T) {
	ctx := context.Background()
	dURL := countertest.Database(t, "snap_t")
	store, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	us := seed(t, store, 7, 2500)
	rows := rowCount(t, store)
	brokers := countertest.Kafka(t, 3, usersTopic, messagesTopic)
	cfg := testConfig(dURL, brokers)
	// Changes after the slot was created, before the snapshot is read: the
	// snapshot must not see them (they are streamed).
	cfg.SnapshotHook = func(rows int64) error {
		if rows == 0 {
			return change(store, us)
		}
		return nil
	}
	stop := startCDC(t, cfg)
	c := collect(t, brokers, usersTopic, messagesTopic)
	lsn := checkSnapshot(t, c.settle(rows+5), rows)

	changeAfterStart(t, store, us)
	c.settle(rows + 10)
	stop()
	ops := map[string]int{}
	for _, r := range c.wait(0, 0) {
		ops[r.env.Op]++
		if r.env.Op != "r" && r.env.Source.LSN < lsn {
			t.Errorf("streamed %s at LSN %d, before the snapshot's consistent point %d", r.env.Op, r.env.Source.LSN, lsn)
		}
	}
	if fmt.Sprint(ops) != fmt.Sprintf("map[c:6 d:2 r:%d u:2]", rows) {
		t.Errorf("ops %v", ops)
	}
	countAndVerify(t, c.wait(0, 0), dURL, brokers)
}

// TestSnapshotCrashAndRestart: the snapshot dies after part of it reached
// Kafka, rows change, the source starts again: a read_committed consumer
// sees exactly one complete snapshot (the one of the second slot) and the
// counters are right; a read_uncommitted one also sees the dead one's part.
func TestSnapshotCrashAndRestart(t *testing.T) {
	ctx := context.Background()
	dURL := countertest.Database(t, "snap_t")
	store, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	us := seed(t, store, 5, 3000)
	brokers := countertest.Kafka(t, 3, usersTopic, messagesTopic)
	cfg := testConfig(dURL, brokers)
	crash := cfg
	crash.SnapshotHook = func(rows int64) error {
		if rows >= 2000 {
			return errors.New("crash")
		}
		return nil
	}
	a := cdc.New(crash, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := a.Start(ctx); err == nil || !strings.Contains(err.Error(), "crash") {
		t.Fatalf("crashing snapshot: %v", err)
	}
	if got := a.Stats().SnapshotRows; got < 2000 {
		t.Fatalf("the crashed snapshot sent %d rows, want 2000 or more", got)
	}
	// Changes while the source is down: the second snapshot has them.
	changeAfterStart(t, store, us)
	rows := rowCount(t, store)

	stop := startCDC(t, cfg)
	c := collect(t, brokers, usersTopic, messagesTopic)
	checkSnapshot(t, c.settle(rows), rows)
	uncommitted := countertest.SaramaConfig()
	uncommitted.Consumer.IsolationLevel = sarama.ReadUncommitted
	if n := len(collectWith(t, brokers, uncommitted, usersTopic, messagesTopic).settle(rows + 2000)); n < rows+2000 {
		t.Errorf("read_uncommitted: %d records, want the crashed part too (%d+)", n, rows+2000)
	}
	changeAfterStart(t, store, us)
	c.settle(rows + 5)
	stop()
	countAndVerify(t, c.wait(0, 0), dURL, brokers)
}

// TestNoSecondSnapshot: a source restarted after a completed snapshot
// streams on; it does not snapshot again.
func TestNoSecondSnapshot(t *testing.T) {
	ctx := context.Background()
	dURL := countertest.Database(t, "snap_t")
	store, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	us := seed(t, store, 3, 300)
	rows := rowCount(t, store)
	brokers := countertest.Kafka(t, 3, usersTopic, messagesTopic)
	cfg := testConfig(dURL, brokers)
	stop := startCDC(t, cfg)
	c := collect(t, brokers, usersTopic, messagesTopic)
	c.settle(rows)
	stop()
	a := cdc.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Start(cctx) }()
	for deadline := time.Now().Add(30 * time.Second); !a.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cdc not ready after 30s")
		}
	}
	changeAfterStart(t, store, us)
	recs := c.settle(rows + 5)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := a.Stats().SnapshotRows; n != 0 {
		t.Errorf("the restarted source sent %d snapshot rows", n)
	}
	checkSnapshot(t, recs, rows)
	countAndVerify(t, recs, dURL, brokers)
}

// TestSnapshotModeNever: rows written before the slot existed are not
// streamed; changes after it are.
func TestSnapshotModeNever(t *testing.T) {
	ctx := context.Background()
	dURL := countertest.Database(t, "snap_t")
	store, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	us := seed(t, store, 3, 100)
	brokers := countertest.Kafka(t, 3, usersTopic, messagesTopic)
	cfg := testConfig(dURL, brokers)
	cfg.SnapshotMode = cdc.SnapshotNever
	stop := startCDC(t, cfg)
	changeAfterStart(t, store, us)
	c := collect(t, brokers, usersTopic, messagesTopic)
	recs := c.settle(5)
	stop()
	ops := map[string]int{}
	for _, r := range recs {
		ops[r.env.Op]++
	}
	if fmt.Sprint(ops) != "map[c:3 d:1 u:1]" {
		t.Errorf("ops %v, want only the changes after the start", ops)
	}
	admin, err := sarama.NewClusterAdmin(brokers, countertest.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics["dialogs.cdc-offsets"]; ok {
		t.Error("CDC_SNAPSHOT_MODE=never created the offsets topic")
	}
}
