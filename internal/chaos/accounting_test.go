package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
)

// TestConfigTallyWantsTheLastPushAtItsCommit: config-subscribe serving an
// older value, or the value at another commit, is not at head.
func TestConfigTallyWantsTheLastPushAtItsCommit(t *testing.T) {
	serve := `{"seq":3,"values":[{"seq":3,"key":"chaos/value","value":{"n":7},"revision":"abc"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, serve) }))
	defer srv.Close()
	c := NewLiveConfig("", "", "", srv.URL)
	c.c = newClient(time.Second)
	if !c.Tally(context.Background()).AtHead {
		t.Fatal("nothing pushed: at head")
	}
	c.head, c.value, c.pushed = "abc", 7, 7
	if tl := c.Tally(context.Background()); !tl.AtHead {
		t.Fatalf("the last push at its commit: not at head: %+v", tl)
	}
	for _, s := range []string{
		`{"seq":2,"values":[{"seq":2,"key":"chaos/value","value":{"n":6},"revision":"abc"}]}`,
		`{"seq":3,"values":[{"seq":3,"key":"chaos/value","value":{"n":7},"revision":"old"}]}`,
		`{"seq":0,"values":[]}`,
	} {
		serve = s
		if c.Tally(context.Background()).AtHead {
			t.Errorf("%s: at head", s)
		}
	}
}

// TestJobsTallyFindsLostAndDoubled: an accepted job not finished, or
// missing an event in ClickHouse, is lost; one with an extra event is
// doubled.
func TestJobsTallyFindsLostAndDoubled(t *testing.T) {
	ctx := context.Background()
	pg, err := pgxpool.New(ctx, testenv.PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Exec(ctx, jobstore.Schema); err != nil {
		t.Fatal(err)
	}
	addr, db := testenv.ClickHouseDB(t)
	ch, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Exec(ctx, eventstore.Schema); err != nil {
		t.Fatal(err)
	}
	j := NewJobs("", "", time.Second)
	good, unfinished, noFinish, extra := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	for id, st := range map[uuid.UUID]string{good: "finish", unfinished: "create", noFinish: "finish", extra: "finish"} {
		j.accepted[id.String()] = time.Now()
		if _, err := pg.Exec(ctx, `INSERT INTO jobs (id, status, create_date, sleep, data_size) VALUES ($1, $2, now(), 1, 1)`, id, st); err != nil {
			t.Fatal(err)
		}
	}
	b, err := ch.PrepareBatch(ctx, "INSERT INTO job_events (job_id, event, ts, ts_ms, sleep, data_size, event_id)")
	if err != nil {
		t.Fatal(err)
	}
	for id, evs := range map[uuid.UUID][]string{good: {"create", "finish"}, unfinished: {"create"}, noFinish: {"create"}, extra: {"create", "finish", "fail"}} {
		for _, e := range evs {
			if err := b.Append(id, e, time.Now(), uint64(1), uint64(1), uint64(1), "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	tl, err := j.Tally(ctx, pg, ch)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Accepted != 4 || tl.Lost != 2 || tl.Doubled != 1 {
		t.Fatalf("tally %+v: want 4 accepted, 2 lost, 1 doubled", tl)
	}
}
