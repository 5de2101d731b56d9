package verify

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrDrift is returned when the check found drift (exit status 1).
var ErrDrift = errors.New("jobs views drift from the log")

// Where are the log and the views; flags default to the environment.
type Where struct {
	Brokers         []string
	PostgresTopic   string
	ClickHouseTopic string
	PostgresURL     string // the jobs database
	ClickHouseAddr  string // host:port of the native protocol
	ClickHouseDB    string
}

// AddFlags declares --brokers, --postgres-url, --clickhouse-addr,
// --clickhouse-db and the topics on fs, defaulting to KAFKA_BROKERS,
// JOBFLOW_POSTGRES_URL, JOBFLOW_CLICKHOUSE_ADDR and JOBFLOW_CLICKHOUSE_DB.
func (w *Where) AddFlags(fs *flag.FlagSet) *string {
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka brokers (host:port,...)")
	fs.StringVar(&w.PostgresTopic, "postgres-topic", PostgresTopic, "topic of the jobs rows")
	fs.StringVar(&w.ClickHouseTopic, "clickhouse-topic", ClickHouseTopic, "topic of the job_events lines")
	fs.StringVar(&w.PostgresURL, "postgres-url", os.Getenv("JOBFLOW_POSTGRES_URL"), "PostgreSQL URL of the jobs database")
	fs.StringVar(&w.ClickHouseAddr, "clickhouse-addr", os.Getenv("JOBFLOW_CLICKHOUSE_ADDR"), "host:port of ClickHouse's native protocol")
	db := os.Getenv("JOBFLOW_CLICKHOUSE_DB")
	if db == "" {
		db = "default"
	}
	fs.StringVar(&w.ClickHouseDB, "clickhouse-db", db, "ClickHouse database")
	return brokers
}

// Connect opens both databases.
func (w Where) Connect(ctx context.Context) (*pgxpool.Pool, driver.Conn, error) {
	if w.PostgresURL == "" || w.ClickHouseAddr == "" || len(w.Brokers) == 0 {
		return nil, nil, errors.New("set --brokers, --postgres-url and --clickhouse-addr (or KAFKA_BROKERS, JOBFLOW_POSTGRES_URL, JOBFLOW_CLICKHOUSE_ADDR)")
	}
	pg, err := pgxpool.New(ctx, w.PostgresURL)
	if err != nil {
		return nil, nil, fmt.Errorf("jobs database: %w", err)
	}
	ch, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{w.ClickHouseAddr},
		Auth:        clickhouse.Auth{Database: w.ClickHouseDB, Username: "default"},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 5 * time.Minute,
	})
	if err == nil {
		err = ch.Ping(ctx)
	}
	if err != nil {
		pg.Close()
		return nil, nil, fmt.Errorf("clickhouse %s: %w", w.ClickHouseAddr, err)
	}
	return pg, ch, nil
}

// ReadLog reads the log where w says it is.
func (w Where) ReadLog(ctx context.Context, progress io.Writer) (*Log, error) {
	return ReadLog(ctx, ReadOptions{Brokers: w.Brokers, PostgresTopic: w.PostgresTopic, ClickHouseTopic: w.ClickHouseTopic, Progress: progress})
}

// JobsOptions of a jobs check.
type JobsOptions struct {
	Where
	Wait     time.Duration // keep checking until no drift or this long has passed
	Interval time.Duration // between checks while waiting
	Limit    int           // drift lines printed (0: all)
}

// RunJobs is `jobflow verify jobs [flags]`: every job finished in the log
// is in PostgreSQL with the log's status and checksum and has exactly its
// events in ClickHouse. It prints the drift and returns ErrDrift if there
// is any (exit 1), another error if it could not check.
func RunJobs(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("verify jobs", flag.ContinueOnError)
	fs.SetOutput(out)
	var o JobsOptions
	brokers := o.AddFlags(fs)
	fs.DurationVar(&o.Wait, "wait", 0, "retry until there is no drift or this long has passed (0: check once)")
	fs.IntVar(&o.Limit, "limit", 20, "drift lines to print (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("verify jobs: unexpected arguments %v", fs.Args())
	}
	if *brokers != "" {
		o.Brokers = strings.Split(*brokers, ",")
	}
	_, err := Jobs(ctx, o, out)
	return err
}

// Jobs runs the check and prints its report to out.
func Jobs(ctx context.Context, o JobsOptions, out io.Writer) (Report, error) {
	var rep Report
	pg, ch, err := o.Connect(ctx)
	if err != nil {
		return rep, fmt.Errorf("verify jobs: %w", err)
	}
	defer pg.Close()
	defer ch.Close()
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	deadline := time.Now().Add(o.Wait)
	for {
		l, err := o.ReadLog(ctx, out)
		if err != nil {
			return rep, fmt.Errorf("verify jobs: %w", err)
		}
		rep, err = Compare(ctx, l, pg, ch, Tables{}, Finished)
		if err != nil {
			return rep, fmt.Errorf("verify jobs: %w", err)
		}
		if rep.OK() || !time.Now().Before(deadline) {
			fmt.Fprintf(out, "log: %d records (%d not the pipeline's), %d jobs\n", l.Records, l.Skipped, len(l.Rows))
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(o.Interval):
		}
	}
	rep.Print(out, o.Limit)
	if !rep.OK() {
		return rep, ErrDrift
	}
	return rep, nil
}
