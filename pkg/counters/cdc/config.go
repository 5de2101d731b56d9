// Package cdc is the CDC source: a long-running adapter (like a Knative
// ContainerSource running Debezium Server) that reads PostgreSQL logical
// replication (pgoutput) for a set of tables and writes one Debezium change
// event per row change to Kafka (see package envelope for the format).
//
// Delivery is at least once and in commit order per key: a transaction's
// events are produced when its commit is decoded, and the slot's confirmed
// LSN only moves past a transaction once Kafka acknowledged every event of
// it and of all earlier transactions. After a crash or restart, replication
// resumes at the confirmed LSN, so nothing is lost; the events of a
// transaction that was acknowledged but not yet confirmed are sent again
// (same source.lsn, new offsets), which consumers dedupe on the change
// itself (see pkg/counters/counter.EventID).
//
// Initial snapshot (CDC_SNAPSHOT_MODE=initial, the default, as Debezium's):
// when the adapter creates the slot it exports the slot's snapshot, reads
// every table in it (REPEATABLE READ, SET TRANSACTION SNAPSHOT) and writes
// one "r" event per row (source.snapshot "true", "last" on the final one,
// source.lsn the slot's consistent point) before it starts streaming from
// that point, so each row is either in the snapshot or streamed, never
// both, never neither. All snapshot events and a completion marker (a
// record keyed by the slot in CDC_OFFSETS_TOPIC) go out in one Kafka
// transaction (Kafka Connect's exactly-once source, KIP-618): a
// read_committed consumer sees the whole snapshot or none of it. On start:
// slot and completed marker → stream; a snapshot started but not completed
// (a crash; the new producer's transactional id fences and aborts the old
// transaction) → drop the slot and snapshot again; no slot → create it and
// snapshot. A slot with no marker at all (made by CDC_SNAPSHOT_MODE=never
// or an older jobflow-cdc) keeps streaming without a snapshot. With
// CDC_SNAPSHOT_MODE=never rows written before the slot was created are not
// streamed (Debezium's snapshot.mode=never).
package cdc

import (
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config of the CDC source, read from the environment.
type Config struct {
	// DialogsURL is the source database (needs wal_level=logical and a role
	// allowed to replicate).
	DialogsURL string `envconfig:"JOBFLOW_DIALOGS_URL" required:"true" desc:"PostgreSQL URL of the source (dialogs) database"`
	// Brokers is the Kafka bootstrap list.
	Brokers []string `envconfig:"CDC_KAFKA_BOOTSTRAP_SERVERS" required:"true" desc:"Kafka bootstrap servers, comma separated"`
	// TopicPrefix names topics <prefix>.<schema>.<table>, as Debezium's topic.prefix.
	TopicPrefix string `envconfig:"CDC_TOPIC_PREFIX" default:"dialogs" desc:"topic prefix (Debezium topic.prefix), also source.name"`
	// Tables to stream, schema-qualified.
	Tables []string `envconfig:"CDC_TABLES" default:"public.users,public.messages" desc:"tables to stream (schema.table, comma separated)"`
	// Slot and Publication are created when missing.
	Slot        string `envconfig:"CDC_SLOT_NAME" default:"jobflow_cdc" desc:"logical replication slot (created if missing)"`
	Publication string `envconfig:"CDC_PUBLICATION_NAME" default:"jobflow_cdc" desc:"publication (created if missing)"`
	// SnapshotMode is initial (snapshot when the slot is created) or never.
	SnapshotMode string `envconfig:"CDC_SNAPSHOT_MODE" default:"initial" desc:"initial (snapshot the tables when the slot is created) or never"`
	// OffsetsTopic holds the snapshot markers; empty: <TopicPrefix>.cdc-offsets.
	OffsetsTopic string `envconfig:"CDC_OFFSETS_TOPIC" desc:"compacted topic of the snapshot markers (default <prefix>.cdc-offsets)"`
	// SnapshotTimeout is the Kafka transaction timeout of a snapshot: a
	// longer snapshot is aborted by the broker (at most its
	// transaction.max.timeout.ms, 15 minutes by default).
	SnapshotTimeout time.Duration `envconfig:"CDC_SNAPSHOT_TIMEOUT" default:"15m" desc:"Kafka transaction timeout of the initial snapshot"`
	// SnapshotHook, for tests, is called once the slot is created, before
	// the snapshot is read (rows 0), and after each batch of snapshot
	// records Kafka took, with the rows sent so far; an error ends the
	// snapshot as a crash would (the transaction is left open, not aborted).
	SnapshotHook func(rows int64) error `ignored:"true"`
	// StatusInterval is how often the confirmed LSN is reported.
	StatusInterval time.Duration `envconfig:"CDC_STATUS_INTERVAL" default:"1s" desc:"how often the confirmed LSN is sent to PostgreSQL"`
	// TableWait is how long Start waits for the tables to exist (the
	// dialogs function creates them).
	TableWait time.Duration `envconfig:"CDC_TABLE_WAIT" default:"2m" desc:"how long to wait for the tables to be created"`
	// HTTPAddr serves /health/readiness, /health/liveness and /metrics; empty: none.
	HTTPAddr string `envconfig:"CDC_HTTP_ADDR" desc:"host:port for /health/* and /metrics; empty: no HTTP server"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
}

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("cdc config: %w", err)
	}
	return c, c.Validate()
}

// Validate checks the config.
func (c Config) Validate() error {
	if len(c.Tables) == 0 {
		return fmt.Errorf("cdc config: CDC_TABLES is empty")
	}
	for _, t := range c.Tables {
		s, n, ok := strings.Cut(t, ".")
		if !ok || !ident(s) || !ident(n) {
			return fmt.Errorf("cdc config: table %q is not schema.table of plain identifiers", t)
		}
	}
	for name, v := range map[string]string{"CDC_SLOT_NAME": c.Slot, "CDC_PUBLICATION_NAME": c.Publication} {
		if !ident(v) {
			return fmt.Errorf("cdc config: %s %q must be a lower-case identifier", name, v)
		}
	}
	if c.SnapshotMode != SnapshotInitial && c.SnapshotMode != SnapshotNever && c.SnapshotMode != "" {
		return fmt.Errorf("cdc config: CDC_SNAPSHOT_MODE %q: want initial or never", c.SnapshotMode)
	}
	if c.StatusInterval <= 0 {
		return fmt.Errorf("cdc config: CDC_STATUS_INTERVAL must be positive")
	}
	return nil
}

// Snapshot modes.
const (
	SnapshotInitial = "initial"
	SnapshotNever   = "never"
)

// snapshots reports whether the adapter snapshots new slots ("" is the
// default, initial).
func (c Config) snapshots() bool { return c.SnapshotMode != SnapshotNever }

// offsetsTopic is OffsetsTopic or its default.
func (c Config) offsetsTopic() string {
	if c.OffsetsTopic != "" {
		return c.OffsetsTopic
	}
	return c.TopicPrefix + ".cdc-offsets"
}

// ident accepts lower-case SQL identifiers that need no quoting.
func ident(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}
