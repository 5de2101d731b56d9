package cdc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/jobflow/jobflow/pkg/counters/cdc/envelope"
)

// snapshotBatch is how many snapshot records go to Kafka in one request.
const snapshotBatch = 1000

// Progress of a snapshot is logged every snapshotLogEvery rows or
// snapshotLogInterval, whichever comes first.
const (
	snapshotLogEvery    = 100_000
	snapshotLogInterval = 10 * time.Second
)

// errCrash marks a failure of the test hook: the snapshot ends as a crash
// would, leaving its transaction open.
var errCrash = errors.New("snapshot hook")

// snapTable is a table as the snapshot reads it.
type snapTable struct {
	schema, name, topic string
	cols                []string // in attnum order, as pgoutput sends them
	key                 []int    // indexes in cols of the primary key
}

// snapRecord is a snapshot event not yet encoded (the last one of the
// snapshot gets source.snapshot "last").
type snapRecord struct {
	topic      string
	key, after map[string]any
	src        envelope.Source
}

// snapshotter reads the tables in the slot's exported snapshot and sends
// one "r" event per row in the producer's open transaction.
type snapshotter struct {
	a        *Adapter
	conn     *pgx.Conn
	producer sarama.SyncProducer
	types    *pgtype.Map
	db       string
	lsn      pglogrepl.LSN
	start    time.Time

	pending []snapRecord
	rows    int64
	logged  time.Time
}

// snapshot reads every table in the exported snapshot and produces its rows
// and the completion marker in one Kafka transaction. The replication
// connection must stay idle meanwhile: the snapshot lives as long as it
// issues no other command.
func (a *Adapter) snapshot(ctx context.Context, conn *pgx.Conn, producer sarama.SyncProducer, slot pglogrepl.CreateReplicationSlotResult, db string) error {
	lsn, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("consistent point %q of slot %s: %w", slot.ConsistentPoint, a.cfg.Slot, err)
	}
	s := &snapshotter{a: a, conn: conn, producer: producer, types: pgtype.NewMap(), db: db, lsn: lsn, start: time.Now()}
	s.logged = s.start
	if h := a.cfg.SnapshotHook; h != nil {
		if err := h(0); err != nil {
			return fmt.Errorf("%w: %w", errCrash, err)
		}
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("snapshot: begin: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.Background(), "ROLLBACK") }()
	if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(slot.SnapshotName, "'", "''")+"'"); err != nil {
		return fmt.Errorf("snapshot: set transaction snapshot %s: %w", slot.SnapshotName, err)
	}
	if err := producer.BeginTxn(); err != nil {
		return fmt.Errorf("snapshot: begin kafka transaction: %w", err)
	}
	a.log.Info("snapshot started", "consistent_point", slot.ConsistentPoint, "snapshot", slot.SnapshotName, "tables", a.cfg.Tables)
	err = s.run(ctx)
	if errors.Is(err, errCrash) {
		return err
	}
	if err != nil {
		if aerr := producer.AbortTxn(); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort kafka transaction: %w", aerr))
		}
		return err
	}
	if err := producer.CommitTxn(); err != nil {
		return fmt.Errorf("snapshot: commit kafka transaction: %w", err)
	}
	a.log.Info("snapshot completed", "rows", s.rows, "consistent_point", slot.ConsistentPoint, "took", time.Since(s.start).Round(time.Millisecond))
	return nil
}

// run sends every table's rows, then the last row and the marker.
func (s *snapshotter) run(ctx context.Context) error {
	for _, t := range s.a.cfg.Tables {
		st, err := s.describe(ctx, t)
		if err != nil {
			return err
		}
		if err := s.table(ctx, st); err != nil {
			return err
		}
	}
	if n := len(s.pending); n > 0 {
		s.pending[n-1].src.Snapshot = "last"
	}
	marker, err := s.a.markerMessage(Marker{LSN: s.lsn.String(), SnapshotCompleted: true, Rows: s.rows})
	if err != nil {
		return err
	}
	return s.flush(len(s.pending), marker)
}

// describe reads a table's columns and primary key (all columns when it
// has none, as pgoutput keys such a table under REPLICA IDENTITY FULL).
func (s *snapshotter) describe(ctx context.Context, table string) (*snapTable, error) {
	schema, name, _ := strings.Cut(table, ".")
	st := &snapTable{schema: schema, name: name, topic: s.a.cfg.TopicPrefix + "." + schema + "." + name}
	rows, err := s.conn.Query(ctx, `SELECT a.attname, coalesce(a.attnum = ANY (i.indkey), false)
		FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, table)
	if err != nil {
		return nil, fmt.Errorf("snapshot: columns of %s: %w", table, err)
	}
	var col string
	var isKey bool
	_, err = pgx.ForEachRow(rows, []any{&col, &isKey}, func() error {
		if isKey {
			st.key = append(st.key, len(st.cols))
		}
		st.cols = append(st.cols, col)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: columns of %s: %w", table, err)
	}
	if len(st.key) == 0 {
		for i := range st.cols {
			st.key = append(st.key, i)
		}
	}
	return st, nil
}

// table streams one table's rows in text form (as pgoutput sends them) to
// Kafka.
func (s *snapshotter) table(ctx context.Context, t *snapTable) error {
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + pgx.Identifier{t.schema, t.name}.Sanitize()
	rr := s.conn.PgConn().ExecParams(ctx, q, nil, nil, nil, nil) // nil result formats: all text
	fields := rr.FieldDescriptions()
	n := int64(0)
	for rr.NextRow() {
		after := make(map[string]any, len(t.cols))
		for i, raw := range rr.Values() {
			if raw == nil {
				after[t.cols[i]] = nil
				continue
			}
			v, err := textValue(s.types, fields[i].DataTypeOID, raw)
			if err != nil {
				_, _ = rr.Close()
				return fmt.Errorf("snapshot: %s column %s: %w", t.topic, t.cols[i], err)
			}
			after[t.cols[i]] = v
		}
		key := make(map[string]any, len(t.key))
		for _, i := range t.key {
			key[t.cols[i]] = after[t.cols[i]]
		}
		s.pending = append(s.pending, snapRecord{topic: t.topic, key: key, after: after, src: envelope.Source{
			Version: Version, Connector: "postgresql", Name: s.a.cfg.TopicPrefix, TsMs: s.start.UnixMilli(),
			Snapshot: "true", DB: s.db, Schema: t.schema, Table: t.name, LSN: int64(s.lsn)}})
		n++
		// Keep the newest record back: it may be the snapshot's last.
		if len(s.pending) > snapshotBatch {
			if err := s.flush(len(s.pending) - 1); err != nil {
				_, _ = rr.Close()
				return err
			}
		}
		s.progress(t, n)
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("snapshot: read %s.%s: %w", t.schema, t.name, err)
	}
	s.a.log.Info("snapshot table done", "table", t.schema+"."+t.name, "rows", n)
	return nil
}

// flush sends the first n pending records (and extra) in one request.
func (s *snapshotter) flush(n int, extra ...*sarama.ProducerMessage) error {
	msgs := make([]*sarama.ProducerMessage, 0, n+len(extra))
	for _, r := range s.pending[:n] {
		m, err := changeMessage(r.topic, r.key, nil, r.after, r.src, envelope.OpRead)
		if err != nil {
			return fmt.Errorf("snapshot: %s: %w", r.topic, err)
		}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, extra...)
	if err := s.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("snapshot: produce: %w", err)
	}
	s.pending = append(s.pending[:0], s.pending[n:]...)
	s.rows += int64(n)
	s.a.addStats(func(st *Stats) { st.SnapshotRows += int64(n) })
	if h := s.a.cfg.SnapshotHook; h != nil {
		if err := h(s.rows); err != nil {
			return fmt.Errorf("%w: %w", errCrash, err)
		}
	}
	return nil
}

// progress logs the rows read every 100,000 rows or 10 seconds.
func (s *snapshotter) progress(t *snapTable, n int64) {
	if n%snapshotLogEvery != 0 && time.Since(s.logged) < snapshotLogInterval {
		return
	}
	s.logged = time.Now()
	s.a.log.Info("snapshot progress", "table", t.schema+"."+t.name, "rows", n, "sent", s.rows)
}
