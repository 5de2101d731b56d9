// Package testenv gives tests real servers: a fresh PostgreSQL database, a
// fresh ClickHouse database (on the servers scripts/test-env.sh starts and
// describes in .jobflow/test/env) and an in-process Kafka-protocol broker.
// Under CI=true a missing server fails the test; elsewhere it skips with
// the command that starts the servers.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/procs"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

var loadOnce sync.Once

// loadEnvFile reads .jobflow/test/env (written by scripts/test-env.sh) into
// the environment, for variables not already set.
func loadEnvFile() {
	loadOnce.Do(func() {
		dir, _ := os.Getwd()
		for ; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			f, err := os.Open(filepath.Join(dir, ".jobflow", "test", "env"))
			if err != nil {
				continue
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
				if ok && os.Getenv(k) == "" {
					os.Setenv(k, strings.Trim(v, "'\""))
				}
			}
			return
		}
	})
}

// Require returns the variable or stops the test: fails under CI, skips elsewhere.
func Require(t testing.TB, name string) string {
	t.Helper()
	loadEnvFile()
	v := os.Getenv(name)
	if v == "" {
		msg := fmt.Sprintf("%s is not set: run scripts/test-env.sh up (make test does)", name)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

// RootDir is the repository root (the folder holding go.mod with the root module).
func RootDir(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for ; dir != "/"; dir = filepath.Dir(dir) {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/jobflow/jobflow\n") {
			return dir
		}
	}
	t.Fatal("repository root not found")
	return ""
}

// PostgresDB creates a fresh database on the test server and returns its
// URL; it is dropped when the test ends.
func PostgresDB(t testing.TB) string {
	t.Helper()
	base := Require(t, "JOBFLOW_TEST_POSTGRES_URL")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect test postgres: %v", err)
	}
	name := fmt.Sprintf("t_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return pgdb.WithDatabase(base, name)
}

// ClickHouseDB creates a fresh database on the test server and returns the
// server address and the database name; it is dropped when the test ends.
func ClickHouseDB(t testing.TB) (addr, db string) {
	t.Helper()
	addr = Require(t, "JOBFLOW_TEST_CLICKHOUSE_ADDR")
	db = fmt.Sprintf("t_%d", time.Now().UnixNano())
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatalf("clickhouse: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create clickhouse database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		_ = conn.Close()
	})
	return addr, db
}

// Kafka starts an in-process Kafka-protocol broker (kfake) with the given
// topics and returns its bootstrap addresses; it stops when the test ends.
func Kafka(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.Ports(0), kfake.DefaultNumPartitions(1), kafkabroker.InMemory()}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// FreePort is a free loopback port, or the test fails.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := procs.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (an engine's output).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
