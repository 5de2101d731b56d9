package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/services"
)

// servers are the addresses of the database servers the plan runs on.
type servers struct {
	postgres   string // URL of the main database
	clickhouse string // host:port
}

// startServers starts PostgreSQL and ClickHouse under JOBFLOW_DIR unless
// the config names running ones.
func (e *Engine) startServers(ctx context.Context, stops *stack) (servers, error) {
	srv := servers{postgres: e.cfg.PostgresURL, clickhouse: e.cfg.ClickHouseAddr}
	if srv.postgres == "" {
		s := services.Postgres(e.cfg.Root, e.state("postgres"), e.cfg.PostgresPort)
		e.say("postgres: starting under %s (port %d)...", s.Dir, e.cfg.PostgresPort)
		url, err := s.Start(ctx)
		if err != nil {
			return srv, err
		}
		srv.postgres = url
		stops.push(func() { _ = s.Stop(context.Background()) })
	}
	if srv.clickhouse == "" {
		s := services.ClickHouse(e.cfg.Root, e.state("clickhouse"), e.cfg.ClickHouseTCP, e.cfg.ClickHouseHTTP)
		e.say("clickhouse: starting under %s (port %d)...", s.Dir, e.cfg.ClickHouseTCP)
		addr, err := s.Start(ctx)
		if err != nil {
			return srv, err
		}
		srv.clickhouse = addr
		stops.push(func() { _ = s.Stop(context.Background()) })
	}
	e.say("postgres: %s", redact(srv.postgres))
	e.say("clickhouse: %s", srv.clickhouse)
	return srv, nil
}

// startKafka starts the embedded broker unless the config names brokers.
func (e *Engine) startKafka(stops *stack) ([]string, error) {
	if len(e.cfg.KafkaBrokers) > 0 {
		e.say("kafka: %s", strings.Join(e.cfg.KafkaBrokers, ","))
		return e.cfg.KafkaBrokers, nil
	}
	dir := ""
	if e.cfg.KafkaPersist {
		dir = e.state("kafka")
	}
	b, err := kafkabroker.Start(e.cfg.KafkaPort, dir)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	stops.push(b.Close)
	e.say("kafka: embedded broker on %s", strings.Join(b.Addrs(), ","))
	return b.Addrs(), nil
}

// createDatabases creates the plan's databases on the server of
// postgresURL when they are missing.
func createDatabases(ctx context.Context, postgresURL string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, postgresURL)
	if err != nil {
		return fmt.Errorf("create databases: %w", err)
	}
	defer conn.Close(context.Background())
	for _, db := range names {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
			return fmt.Errorf("database %s: %w", db, err)
		}
		if exists {
			continue
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // created meanwhile
			return fmt.Errorf("create database %s: %w", db, err)
		}
	}
	return nil
}

// redact hides the password of a URL.
func redact(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		if j := strings.Index(url[i+3:], "@"); j >= 0 {
			user := url[i+3 : i+3+j]
			if k := strings.Index(user, ":"); k >= 0 {
				return url[:i+3] + user[:k] + ":***" + url[i+3+j:]
			}
		}
	}
	return url
}
