package rebuild_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/pkg/counters/cdc"
	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/counters/dialogs"
	"github.com/jobflow/jobflow/pkg/counters/rebuild"
	"github.com/jobflow/jobflow/pkg/runtime/topicread"
)

// A dialogs database streamed by the real CDC source into the topics; the
// live counters applied from them as the counter function applies them
// (some changes twice: redelivery); then rebuilt, damaged, swapped.
func TestRebuildCounters(t *testing.T) {
	ctx := context.Background()
	dURL := countertest.Database(t, "rb_dialogs")
	cURL := countertest.Database(t, "rb_counters")
	brokers := countertest.Kafka(t, 2, rebuild.Topics...)
	d, err := dialogs.Open(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	u, _ := url.Parse(dURL)
	cctx, cancel := context.WithCancel(ctx)
	a := cdc.New(cdc.Config{DialogsURL: dURL, Brokers: brokers, TopicPrefix: "dialogs",
		Tables: []string{"public.users", "public.messages"}, Slot: strings.TrimPrefix(u.Path, "/"), Publication: "jobflow_cdc",
		StatusInterval: 100 * time.Millisecond, TableWait: 10 * time.Second},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	done := make(chan error, 1)
	go func() { done <- a.Start(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(30 * time.Second); !a.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cdc not ready after 30s")
		}
	}

	var users []dialogs.User
	for i := range 6 {
		usr, err := d.CreateUser(ctx, fmt.Sprintf("user%d", i))
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, usr)
	}
	for i := range 60 {
		m, err := d.Send(ctx, users[i%6].ID, users[(i+1+i/6)%6].ID, fmt.Sprint("hi ", i))
		if err != nil {
			t.Fatal(err)
		}
		switch i % 5 {
		case 1:
			if _, _, err := d.MarkRead(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		case 3:
			if err := d.Delete(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
	}

	live, err := counter.Open(ctx, cURL)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dpool, err := pgxpool.New(ctx, dURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dpool.Close()
	// The live view: every change applied in small batches, every third
	// batch twice, until the counters equal the dialogs database.
	var from topicread.Offsets
	batches := 0
	for deadline := time.Now().Add(60 * time.Second); ; {
		res, err := topicread.Read(ctx, topicread.Options{Brokers: brokers, Topics: rebuild.Topics, From: from}, func(m *sarama.ConsumerMessage) error {
			e, err := kafkasource.ToEvent(ctx, m, rebuild.Namespace, rebuild.Source)
			if err != nil {
				return err
			}
			it, err := counter.ItemOf(*e, counter.DefaultTables)
			if err != nil || it == nil {
				return err
			}
			for range 1 + batches%3/2 {
				if _, err := live.Apply(ctx, []counter.Item{*it}); err != nil {
					return err
				}
			}
			batches++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		from = res.Ends
		rep, err := counter.Compare(ctx, dpool, live.Pool)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() {
			break
		}
		if time.Now().After(deadline) {
			var out bytes.Buffer
			rep.Print(&out, 0)
			t.Fatalf("live counters never caught up:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	o := rebuild.Options{Brokers: brokers, CountersURL: cURL}
	var out bytes.Buffer
	diff, err := rebuild.Counters(ctx, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !diff.Equal() || diff.Live != 12 || diff.Rebuilt != 12 { // 6 counters rows, 6 users rows
		diff.Print(&out, "counters", 0)
		t.Fatalf("rebuild of faithful counters: %+v\n%s", diff, out.String())
	}

	// Damage: one user's total, another's users row.
	if _, err := live.Pool.Exec(ctx, "UPDATE counters SET total = total + 7 WHERE user_id = $1", users[2].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Pool.Exec(ctx, "DELETE FROM users WHERE id = $1", users[4].ID); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if diff, err = rebuild.Counters(ctx, o, &out); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(diff.Differ, diff.Missing, diff.Extra) != fmt.Sprintf("[counters %d] [users %d] []", users[2].ID, users[4].ID) {
		t.Fatalf("rebuild of damaged counters: %+v\n%s", diff, out.String())
	}

	o.Swap = true
	if diff, err = rebuild.Counters(ctx, o, &out); err != nil || !diff.Swapped {
		t.Fatalf("swap: %v %+v\n%s", err, diff, out.String())
	}
	// The swapped-in counters equal the dialogs database, and a rebuild.
	if rep, err := counter.Compare(ctx, dpool, live.Pool); err != nil || !rep.OK() {
		t.Fatalf("counters after the swap: %v %+v", err, rep)
	}
	o.Swap = false
	if diff, err = rebuild.Counters(ctx, o, &out); err != nil || !diff.Equal() {
		t.Fatalf("rebuild after the swap: %v %+v\n%s", err, diff, out.String())
	}
}
