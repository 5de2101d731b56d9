package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Adapter is the CDC source. Start runs it.
type Adapter struct {
	cfg Config
	log *slog.Logger

	ready   atomic.Bool
	stats   Stats
	statsMu sync.Mutex
}

// Stats are counters of a running adapter.
type Stats struct {
	Transactions int64         // transactions decoded
	Events       int64         // change events produced
	Acked        int64         // change events Kafka acknowledged
	Confirmed    pglogrepl.LSN // last LSN confirmed to PostgreSQL
	SnapshotRows int64         // rows the initial snapshot sent (in its open or committed transaction)
}

// New returns an adapter; log may be nil.
func New(cfg Config, log *slog.Logger) *Adapter {
	if log == nil {
		log = slog.Default()
	}
	return &Adapter{cfg: cfg, log: log.With("component", "cdc", "slot", cfg.Slot)}
}

// Ready reports whether the adapter is streaming.
func (a *Adapter) Ready() bool { return a.ready.Load() }

// Stats returns a copy of the counters.
func (a *Adapter) Stats() Stats {
	a.statsMu.Lock()
	defer a.statsMu.Unlock()
	return a.stats
}

func (a *Adapter) addStats(f func(*Stats)) {
	a.statsMu.Lock()
	f(&a.stats)
	a.statsMu.Unlock()
}

// Start prepares the publication and the slot, then streams changes to
// Kafka until ctx ends (nil) or something fails (the error; the caller
// restarts it, and it resumes at the confirmed LSN).
func (a *Adapter) Start(ctx context.Context) error {
	defer a.ready.Store(false)
	conn, err := pgx.Connect(ctx, a.cfg.DialogsURL)
	if err != nil {
		return fmt.Errorf("connect source database: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if err := a.waitForTables(ctx, conn); err != nil {
		return err
	}
	if err := a.ensurePublication(ctx, conn); err != nil {
		return err
	}

	repl, sys, err := a.openReplication(ctx, conn)
	if err != nil {
		return err
	}
	defer func() { _ = repl.Close(context.Background()) }()

	producer, err := sarama.NewAsyncProducer(a.cfg.Brokers, ProducerConfig())
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	acks := &ackTracker{}
	fatal := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.readAcks(producer, acks, fatal)
	}()

	err = pglogrepl.StartReplication(ctx, repl, a.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", a.cfg.Publication)},
	})
	if err != nil {
		producer.AsyncClose()
		wg.Wait()
		return fmt.Errorf("start replication on slot %s: %w", a.cfg.Slot, err)
	}
	a.log.Info("cdc streaming", "db", sys.DBName, "tables", a.cfg.Tables, "topics", a.cfg.TopicPrefix+".<schema>.<table>")
	a.ready.Store(true)

	s := &stream{a: a, conn: conn, repl: repl, producer: producer, acks: acks, db: sys.DBName,
		relations: map[uint32]*relation{}, types: pgtype.NewMap()}
	runErr := s.run(ctx, fatal)

	// Wait for what Kafka still has in flight, then confirm it.
	producer.AsyncClose()
	wg.Wait()
	select {
	case err := <-fatal:
		runErr = errors.Join(runErr, err)
	default:
	}
	if runErr == nil || errors.Is(runErr, context.Canceled) {
		s.end()
	}
	if ctx.Err() != nil && (runErr == nil || errors.Is(runErr, context.Canceled)) {
		a.log.Info("cdc stopped", "confirmed", s.confirmed, "acked", a.Stats().Acked)
		return nil
	}
	return runErr
}

// openReplication opens the replication connection and the slot.
func (a *Adapter) openReplication(ctx context.Context, conn *pgx.Conn) (*pgconn.PgConn, pglogrepl.IdentifySystemResult, error) {
	var sys pglogrepl.IdentifySystemResult
	replURL, err := replicationURL(a.cfg.DialogsURL)
	if err != nil {
		return nil, sys, err
	}
	repl, err := pgconn.Connect(ctx, replURL)
	if err != nil {
		return nil, sys, fmt.Errorf("replication connection: %w", err)
	}
	if sys, err = pglogrepl.IdentifySystem(ctx, repl); err != nil {
		err = fmt.Errorf("identify system: %w", err)
	} else {
		err = a.prepareSlot(ctx, conn, repl, sys.DBName)
	}
	if err != nil {
		_ = repl.Close(context.Background())
		return nil, sys, err
	}
	return repl, sys, nil
}

// ProducerConfig is the Kafka producer: acknowledged by all replicas,
// idempotent, so that retries neither duplicate nor reorder records of a
// partition.
func ProducerConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.ClientID = "jobflow-cdc"
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 200 * time.Millisecond
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Producer.Flush.Frequency = time.Millisecond
	sc.Producer.Flush.Messages = 500
	return sc
}

func replicationURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("source database URL must be postgres://...: %v", err)
	}
	q := u.Query()
	q.Set("replication", "database")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (a *Adapter) waitForTables(ctx context.Context, conn *pgx.Conn) error {
	deadline := time.Now().Add(a.cfg.TableWait)
	for {
		var missing []string
		for _, t := range a.cfg.Tables {
			var ok bool
			if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&ok); err != nil {
				return fmt.Errorf("look up table %s: %w", t, err)
			}
			if !ok {
				missing = append(missing, t)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tables %v do not exist after %s (the dialogs function creates them)", missing, a.cfg.TableWait)
		}
		a.log.Info("waiting for tables", "missing", missing)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ensurePublication creates the publication, or adds the tables it lacks,
// and warns about tables whose updates and deletes would lack the old row.
func (a *Adapter) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, a.cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("look up publication: %w", err)
	}
	if !exists {
		_, err := conn.Exec(ctx, fmt.Sprintf(`CREATE PUBLICATION %s FOR TABLE %s`, a.cfg.Publication, strings.Join(a.cfg.Tables, ", ")))
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42710") { // duplicate_object: created concurrently
			return fmt.Errorf("create publication %s: %w", a.cfg.Publication, err)
		}
		if err == nil {
			a.log.Info("created publication", "publication", a.cfg.Publication, "tables", a.cfg.Tables)
		}
	} else {
		rows, err := conn.Query(ctx, `SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1`, a.cfg.Publication)
		if err != nil {
			return fmt.Errorf("publication tables: %w", err)
		}
		have, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("publication tables: %w", err)
		}
		for _, t := range a.cfg.Tables {
			if !slices.Contains(have, t) {
				if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER PUBLICATION %s ADD TABLE %s`, a.cfg.Publication, t)); err != nil {
					return fmt.Errorf("add %s to publication %s: %w", t, a.cfg.Publication, err)
				}
				a.log.Info("added table to publication", "table", t)
			}
		}
	}
	for _, t := range a.cfg.Tables {
		var ident string
		if err := conn.QueryRow(ctx, `SELECT relreplident::text FROM pg_class WHERE oid = to_regclass($1)`, t).Scan(&ident); err != nil {
			return fmt.Errorf("replica identity of %s: %w", t, err)
		}
		if ident != "f" {
			a.log.Warn("table has no REPLICA IDENTITY FULL: its update and delete events carry only the key in before", "table", t)
		}
	}
	return nil
}

// prepareSlot makes sure the slot exists and, with CDC_SNAPSHOT_MODE
// initial, that the snapshot of the slot it streams from was completed:
// see the package doc for the cases.
func (a *Adapter) prepareSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, db string) error {
	exists, err := a.slotExists(ctx, conn)
	if err != nil {
		return err
	}
	if !a.cfg.snapshots() {
		if !exists {
			_, err = a.createSlot(ctx, repl, "NOEXPORT_SNAPSHOT")
		}
		return err
	}
	if err := a.ensureOffsetsTopic(); err != nil {
		return err
	}
	// Initialising the transactional producer fences an earlier adapter on
	// this slot and aborts the transaction it left open, so the marker is
	// read after it.
	producer, err := sarama.NewSyncProducer(a.cfg.Brokers, TransactionalProducerConfig(a.cfg.Slot, a.cfg.SnapshotTimeout))
	if err != nil {
		return fmt.Errorf("kafka transactional producer: %w", err)
	}
	defer func() { _ = producer.Close() }()
	m, err := a.readMarker(ctx)
	if err != nil {
		return err
	}
	switch {
	case exists && m == nil:
		a.log.Warn("the slot has no snapshot marker (made by CDC_SNAPSHOT_MODE=never or an older jobflow-cdc): streaming without a snapshot", "offsets_topic", a.cfg.offsetsTopic())
		return nil
	case exists && m.SnapshotCompleted:
		a.log.Info("snapshot was completed", "consistent_point", m.LSN, "rows", m.Rows)
		return nil
	case exists:
		a.log.Warn("the snapshot of the slot was not completed: dropping the slot to snapshot again")
		if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, a.cfg.Slot); err != nil {
			return fmt.Errorf("drop slot %s: %w", a.cfg.Slot, err)
		}
	case m != nil && m.SnapshotCompleted:
		a.log.Error("the slot is gone though its snapshot was completed: snapshotting again; "+
			"the rows are sent again with a new LSN, so consumers that kept the first snapshot count them twice", "old_consistent_point", m.LSN)
	}
	started, err := a.markerMessage(Marker{})
	if err != nil {
		return err
	}
	if err := sendInTransaction(producer, started); err != nil {
		return fmt.Errorf("snapshot started marker: %w", err)
	}
	res, err := a.createSlot(ctx, repl, "EXPORT_SNAPSHOT")
	if err != nil {
		return err
	}
	return a.snapshot(ctx, conn, producer, res, db)
}

// sendInTransaction produces msgs in a transaction of their own.
func sendInTransaction(p sarama.SyncProducer, msgs ...*sarama.ProducerMessage) error {
	if err := p.BeginTxn(); err != nil {
		return err
	}
	if err := p.SendMessages(msgs); err != nil {
		return errors.Join(err, p.AbortTxn())
	}
	return p.CommitTxn()
}

// slotExists looks the slot up; it must use pgoutput.
func (a *Adapter) slotExists(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var plugin string
	err := conn.QueryRow(ctx, `SELECT plugin FROM pg_replication_slots WHERE slot_name = $1`, a.cfg.Slot).Scan(&plugin)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up slot %s: %w", a.cfg.Slot, err)
	}
	if plugin != "pgoutput" {
		return false, fmt.Errorf("slot %s uses plugin %q, not pgoutput", a.cfg.Slot, plugin)
	}
	return true, nil
}

// createSlot creates the logical replication slot (pgoutput), exporting its
// snapshot or not (snapshotAction EXPORT_SNAPSHOT or NOEXPORT_SNAPSHOT).
func (a *Adapter) createSlot(ctx context.Context, repl *pgconn.PgConn, snapshotAction string) (pglogrepl.CreateReplicationSlotResult, error) {
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, a.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: snapshotAction})
	if err != nil {
		return res, fmt.Errorf("create slot %s: %w", a.cfg.Slot, err)
	}
	a.log.Info("created replication slot", "consistent_point", res.ConsistentPoint)
	return res, nil
}
