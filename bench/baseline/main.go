// Command jobflow-baseline is the plain-Kafka design jobflow is measured
// against (docs/BENCHMARKS.md, "End to end"): the seed design a user would
// pick instead, doing the same work with the same code.
//
//   - receiver: POST /create/job, validated by pkg/jobs/receiver, produced
//     straight to receiver-topic with sarama, answered after the broker's
//     acknowledgement;
//   - processor: a sarama consumer group on receiver-topic running
//     pkg/jobs/processor on each batch's events concurrently, producing
//     processor-topic;
//   - converter: a consumer group on receiver-topic and processor-topic
//     running pkg/jobs/converter, producing postgres-topic and
//     clickhouse-topic;
//   - pgwriter and chwriter: consumer groups on postgres-topic and
//     clickhouse-topic writing with pkg/jobs/jobstore and pkg/jobs/eventstore
//     through pkg/runtime/batch with pgsink's and chsink's batch settings.
//
// Each role is its own process (jobflow-baseline <role>), so that the bench
// reads each one's CPU. Events are CloudEvents in Kafka's binary mode, the
// records jobflow's KafkaSinks write; offsets are marked only after a
// batch's outputs were acknowledged (or its rows committed).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
)

type options struct {
	Brokers        []string      `envconfig:"BASELINE_BROKERS" required:"true" desc:"Kafka brokers (comma-separated)"`
	Listen         string        `envconfig:"BASELINE_LISTEN" default:"127.0.0.1:8090" desc:"receiver: address of POST /create/job"`
	PostgresURL    string        `envconfig:"BASELINE_POSTGRES_URL" desc:"pgwriter: PostgreSQL URL of the jobs database"`
	ClickHouseAddr string        `envconfig:"BASELINE_CLICKHOUSE_ADDR" desc:"chwriter: ClickHouse native host:port"`
	ClickHouseDB   string        `envconfig:"BASELINE_CLICKHOUSE_DB" default:"default" desc:"chwriter: ClickHouse database"`
	MaxBatch       int           `envconfig:"BASELINE_MAX_BATCH" default:"1000" desc:"most records a consumer takes from a partition at once"`
	InFlight       int           `envconfig:"BASELINE_IN_FLIGHT" default:"4" desc:"batches of one partition handled at once (offsets are marked in order)"`
	FetchWait      time.Duration `envconfig:"BASELINE_FETCH_WAIT" default:"500ms" desc:"longest a fetch waits for records at the broker (sarama's Consumer.MaxWaitTime)"`
}

var roles = map[string]func(ctx context.Context, o options) error{
	"receiver":  runReceiver,
	"processor": runProcessor,
	"converter": runConverter,
	"pgwriter":  runPGWriter,
	"chwriter":  runCHWriter,
}

func main() {
	if len(os.Args) != 2 || roles[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: jobflow-baseline receiver|processor|converter|pgwriter|chwriter (env: jobflow-baseline env)")
		if len(os.Args) == 2 && os.Args[1] == "env" {
			var o options
			_ = envconfig.Usage("", &o)
			return
		}
		os.Exit(2)
	}
	var o options
	if err := envconfig.Process("", &o); err != nil {
		fmt.Fprintln(os.Stderr, "jobflow-baseline:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("role", os.Args[1]))
	if err := roles[os.Args[1]](ctx, o); err != nil && ctx.Err() == nil {
		slog.Error("stopped", "err", err)
		os.Exit(1)
	}
}
