// Package countertest gives the counters tests their servers: a fresh pair
// of databases on the test PostgreSQL (scripts/test-env.sh up) and an
// in-process Kafka-protocol broker (kfake). A missing server fails the test
// when CI=true and skips it otherwise.
package countertest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Missing fails the test in CI and skips it elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a test server is missing: "+format, args...)
	}
	t.Skipf("skipped, a test server is missing (run scripts/test-env.sh up): "+format, args...)
}

// PostgresURL is JOBFLOW_TEST_POSTGRES_URL, from the environment or from
// .jobflow/test/env at the repository root.
func PostgresURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("JOBFLOW_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	if root := repoRoot(); root != "" {
		if u := readEnvFile(filepath.Join(root, ".jobflow/test/env"), "JOBFLOW_TEST_POSTGRES_URL"); u != "" {
			return u
		}
	}
	Missing(t, "JOBFLOW_TEST_POSTGRES_URL is not set and .jobflow/test/env has none")
	return ""
}

func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/jobflow/jobflow\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func readEnvFile(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || k != name {
			continue
		}
		v = strings.Trim(v, `'"`)
		return strings.ReplaceAll(v, `\?`, `?`) // bash %q escapes '?'
	}
	return ""
}

// Database creates a fresh database named <prefix>_<random> on the test
// server and returns its URL; cleanup drops its replication slots and it.
func Database(t testing.TB, prefix string) string {
	t.Helper()
	base := PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		Missing(t, "test PostgreSQL at %s: %v", base, err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		for i := 0; i < 50; i++ { // a slot may still be active for a moment
			_, err = c.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
			var left int
			_ = c.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = $1`, name).Scan(&left)
			if err == nil && left == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("test PostgreSQL URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Kafka starts an in-process Kafka-protocol broker with the given topics
// (each with partitions partitions) and returns its bootstrap address.
func Kafka(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(int(partitions)), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// SaramaConfig is the client config the tests use against kfake; its
// consumers read read_committed, as the engine's do.
func SaramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	return sc
}
