package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/counters/dialogs"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	jobsverify "github.com/jobflow/jobflow/pkg/jobs/verify"
	"github.com/jobflow/jobflow/pkg/orders/delivery"
	"github.com/jobflow/jobflow/pkg/orders/participant"
	"github.com/jobflow/jobflow/pkg/orders/payment"
	"github.com/jobflow/jobflow/pkg/orders/saga"
	"github.com/jobflow/jobflow/pkg/orders/stock"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// verify all runs the registered verifiers on real databases: no drift,
// then drift (a message the counters never saw) is exit 1.
func TestVerifyAll(t *testing.T) {
	ctx := context.Background()
	dialogsURL, countersURL := countertest.Database(t, "verify_dialogs"), countertest.Database(t, "verify_counters")
	t.Setenv("JOBFLOW_DIALOGS_URL", dialogsURL)
	t.Setenv("JOBFLOW_COUNTERS_URL", countersURL)
	// The orders verifier is registered too: empty databases of its
	// services (orders and notify left out, "-").
	for name, schema := range map[string]string{"payment": participant.Schema + payment.Schema, "stock": participant.Schema + stock.Schema,
		"delivery": participant.Schema + delivery.Schema, "saga": saga.Schema} {
		url := countertest.Database(t, "verify_"+name)
		db, err := pgdb.Open(ctx, name, url, schema)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		t.Setenv("JOBFLOW_"+strings.ToUpper(name)+"_URL", url)
	}
	t.Setenv("JOBFLOW_ORDERS_URL", "-")
	t.Setenv("JOBFLOW_NOTIFY_URL", "-")
	d, err := dialogs.Open(ctx, dialogsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := counter.Open(ctx, countersURL)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The jobs views: an empty log and empty tables.
	t.Setenv("KAFKA_BROKERS", strings.Join(testenv.Kafka(t, 2, jobsverify.PostgresTopic, jobsverify.ClickHouseTopic), ","))
	pgURL := testenv.PostgresDB(t)
	chAddr, chDB := testenv.ClickHouseDB(t)
	t.Setenv("JOBFLOW_POSTGRES_URL", pgURL)
	t.Setenv("JOBFLOW_CLICKHOUSE_ADDR", chAddr)
	t.Setenv("JOBFLOW_CLICKHOUSE_DB", chDB)
	js, err := jobstore.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	js.Close()
	es, err := eventstore.Open(ctx, chAddr, chDB)
	if err != nil {
		t.Fatal(err)
	}
	_ = es.Close()
	var out bytes.Buffer
	if err := runVerify(ctx, []string{"all"}, &out); err != nil {
		t.Fatalf("empty databases: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "== counters: ok") || !strings.Contains(out.String(), "== jobs: ok") {
		t.Fatalf("verify all said:\n%s", out.String())
	}
	a, err := d.CreateUser(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.CreateUser(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Send(ctx, a.ID, b.ID, "hi"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runVerify(ctx, []string{"all"}, &out); !errors.Is(err, errPartial) || !strings.Contains(out.String(), "== counters: DRIFT") {
		t.Fatalf("drift: %v\n%s", err, out.String())
	}
	if err := runVerify(ctx, []string{"counters"}, &out); !errors.Is(err, errPartial) {
		t.Fatalf("verify counters on drift: %v", err)
	}
}

// TestVerifyDefaultsFollowTheEngineSettings: unset, the verifiers' databases
// are those of the `jobflow up` the environment describes
// (JOBFLOW_POSTGRES_PORT, JOBFLOW_POSTGRES_URL), not a fixed port.
func TestVerifyDefaultsFollowTheEngineSettings(t *testing.T) {
	for _, k := range []string{"JOBFLOW_POSTGRES_URL", "JOBFLOW_DIALOGS_URL", "JOBFLOW_COUNTERS_URL", "KAFKA_BROKERS", "JOBFLOW_CLICKHOUSE_ADDR"} {
		t.Setenv(k, "")
	}
	t.Setenv("JOBFLOW_POSTGRES_PORT", "55999")
	if err := countersDefaults(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"JOBFLOW_DIALOGS_URL": "127.0.0.1:55999/dialogs", "JOBFLOW_COUNTERS_URL": "127.0.0.1:55999/counters",
		"JOBFLOW_POSTGRES_URL": "127.0.0.1:55999/jobflow"} {
		if got := os.Getenv(k); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want the server of JOBFLOW_POSTGRES_PORT (%s)", k, got, want)
		}
	}
	t.Setenv("JOBFLOW_DIALOGS_URL", "")
	t.Setenv("JOBFLOW_POSTGRES_URL", "postgres://u@db.example:5433/jobflow?sslmode=require")
	if err := countersDefaults(); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("JOBFLOW_DIALOGS_URL"); got != "postgres://u@db.example:5433/dialogs?sslmode=require" {
		t.Errorf("JOBFLOW_DIALOGS_URL = %q, want database dialogs on JOBFLOW_POSTGRES_URL's server", got)
	}
}
