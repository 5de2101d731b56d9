package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/pkg/jobs/jobstest"
)

// jobflow rebuild on real servers: equal is exit 0, a damaged live table
// exit 1 with a report, --swap repairs it.
func TestRebuildCommand(t *testing.T) {
	ctx := context.Background()
	p := jobstest.New(t)
	p.Run(50)
	p.Store()
	t.Setenv("KAFKA_BROKERS", strings.Join(p.Where.Brokers, ","))
	t.Setenv("JOBFLOW_POSTGRES_URL", p.Where.PostgresURL)
	t.Setenv("JOBFLOW_CLICKHOUSE_ADDR", p.Where.ClickHouseAddr)
	t.Setenv("JOBFLOW_CLICKHOUSE_DB", p.Where.ClickHouseDB)
	suffix := fmt.Sprintf("_%d", time.Now().UnixNano())
	names := []string{"--fresh", "rb" + suffix, "--replaced", "rp" + suffix}
	t.Cleanup(func() {
		_ = p.Events.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS rb"+suffix)
		_ = p.Events.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS rp"+suffix)
	})
	var out bytes.Buffer
	for _, view := range []string{"jobs", "job_events"} {
		if err := runRebuild(ctx, append([]string{view}, names...), &out); err != nil || !strings.Contains(out.String(), view+": live ") || !strings.HasSuffix(out.String(), ": equal\n") {
			t.Fatalf("rebuild %s: %v\n%s", view, err, out.String())
		}
	}
	if _, err := p.Jobs.Pool.Exec(ctx, "UPDATE jobs SET sleep = sleep + 1 WHERE id = $1", p.Rows[0].ID); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runRebuild(ctx, append([]string{"jobs"}, names...), &out); !errors.Is(err, errPartial) ||
		!strings.Contains(out.String(), "different: "+p.Rows[0].ID.String()) {
		t.Fatalf("rebuild of a damaged table: %v\n%s", err, out.String())
	}
	if err := runRebuild(ctx, append([]string{"jobs", "--swap"}, names...), &out); err != nil || !strings.Contains(out.String(), "jobs: swapped in") {
		t.Fatalf("rebuild --swap: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := runRebuild(ctx, append([]string{"jobs"}, names...), &out); err != nil {
		t.Fatalf("rebuild after the swap: %v\n%s", err, out.String())
	}
}
