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
	"github.com/jackc/pgx/v5/pgproto3"
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

	replURL, err := replicationURL(a.cfg.DialogsURL)
	if err != nil {
		return err
	}
	repl, err := pgconn.Connect(ctx, replURL)
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	defer func() { _ = repl.Close(context.Background()) }()
	sys, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return fmt.Errorf("identify system: %w", err)
	}
	if err := a.ensureSlot(ctx, conn, repl); err != nil {
		return err
	}

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
		// Confirm what Kafka acknowledged, then end the stream with CopyDone
		// and wait for the server's answer: a status update followed at once
		// by closing the connection may never be applied to the slot.
		if err := s.sendStatus(context.Background()); err != nil {
			a.log.Warn("final status update", "err", err)
		} else {
			_ = repl.Conn().SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := pglogrepl.SendStandbyCopyDone(context.Background(), repl); err != nil {
				a.log.Warn("end replication", "err", err)
			}
		}
	}
	if ctx.Err() != nil && (runErr == nil || errors.Is(runErr, context.Canceled)) {
		a.log.Info("cdc stopped", "confirmed", s.confirmed, "acked", a.Stats().Acked)
		return nil
	}
	return runErr
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

// ensureSlot creates the logical replication slot (pgoutput) if missing.
func (a *Adapter) ensureSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn) error {
	var plugin string
	err := conn.QueryRow(ctx, `SELECT plugin FROM pg_replication_slots WHERE slot_name = $1`, a.cfg.Slot).Scan(&plugin)
	if err == nil {
		if plugin != "pgoutput" {
			return fmt.Errorf("slot %s uses plugin %q, not pgoutput", a.cfg.Slot, plugin)
		}
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look up slot %s: %w", a.cfg.Slot, err)
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, a.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return fmt.Errorf("create slot %s: %w", a.cfg.Slot, err)
	}
	a.log.Info("created replication slot", "consistent_point", res.ConsistentPoint)
	return nil
}

// readAcks counts Kafka's acknowledgements per transaction; the first
// failure is fatal (the adapter stops and resumes at the confirmed LSN).
func (a *Adapter) readAcks(p sarama.AsyncProducer, acks *ackTracker, fatal chan<- error) {
	succ, errs := p.Successes(), p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			acks.done(m.Metadata.(*pendingTx))
			a.addStats(func(s *Stats) { s.Acked++ })
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			acks.fail()
			select {
			case fatal <- fmt.Errorf("produce to %s: %w", e.Msg.Topic, e.Err):
			default:
			}
		}
	}
}

// pendingTx is a decoded transaction whose events are not all acknowledged.
type pendingTx struct {
	end       pglogrepl.LSN
	remaining int
}

// ackTracker yields the LSN up to which every transaction is acknowledged.
type ackTracker struct {
	mu      sync.Mutex
	queue   []*pendingTx
	flushed pglogrepl.LSN
	failed  bool
}

func (t *ackTracker) add(p *pendingTx) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = append(t.queue, p)
	t.advance()
}

func (t *ackTracker) done(p *pendingTx) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p.remaining--
	t.advance()
}

// fail stops the flushed LSN from moving: after a failed produce, later
// acknowledgements must not confirm past the lost event.
func (t *ackTracker) fail() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
}

func (t *ackTracker) advance() {
	for !t.failed && len(t.queue) > 0 && t.queue[0].remaining <= 0 {
		if t.queue[0].end > t.flushed {
			t.flushed = t.queue[0].end
		}
		t.queue = t.queue[1:]
	}
}

// idle moves the flushed LSN to lsn when nothing is pending (a keepalive's
// WAL end between transactions: everything before it has been sent).
func (t *ackTracker) idle(lsn pglogrepl.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.failed && len(t.queue) == 0 && lsn > t.flushed {
		t.flushed = lsn
	}
}

func (t *ackTracker) position() pglogrepl.LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flushed
}

// relation is a table as pgoutput described it, plus its primary key.
type relation struct {
	msg   *pglogrepl.RelationMessage
	topic string
	key   []int // column indexes of the primary key
}

type stream struct {
	a         *Adapter
	conn      *pgx.Conn
	repl      *pgconn.PgConn
	producer  sarama.AsyncProducer
	acks      *ackTracker
	db        string
	relations map[uint32]*relation
	types     *pgtype.Map

	tx        *txState
	confirmed pglogrepl.LSN
}

type txState struct {
	xid        uint32
	commitTime time.Time
	records    []*sarama.ProducerMessage
}

func (s *stream) sendStatus(ctx context.Context) error {
	pos := s.acks.position()
	if err := pglogrepl.SendStandbyStatusUpdate(ctx, s.repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos}); err != nil {
		return fmt.Errorf("standby status update: %w", err)
	}
	if pos != s.confirmed {
		s.a.log.Debug("confirmed", "lsn", pos)
		s.confirmed = pos
		s.a.addStats(func(st *Stats) { st.Confirmed = pos })
	}
	return nil
}

func (s *stream) run(ctx context.Context, fatal <-chan error) error {
	next := time.Now().Add(s.a.cfg.StatusInterval)
	for {
		select {
		case err := <-fatal:
			return err
		default:
		}
		if !time.Now().Before(next) {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			next = time.Now().Add(s.a.cfg.StatusInterval)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		raw, err := s.repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive replication message: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication error: %s (%s)", m.Message, m.Code)
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("keepalive: %w", err)
				}
				if s.tx == nil {
					s.acks.idle(k.ServerWALEnd)
				}
				if k.ReplyRequested {
					next = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("xlog data: %w", err)
				}
				if err := s.handle(ctx, x); err != nil {
					return err
				}
			}
		}
	}
}

func (s *stream) handle(ctx context.Context, x pglogrepl.XLogData) error {
	msg, err := pglogrepl.Parse(x.WALData)
	if err != nil {
		return fmt.Errorf("decode pgoutput message at %s: %w", x.WALStart, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return s.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		s.tx = &txState{xid: m.Xid, commitTime: m.CommitTime}
	case *pglogrepl.InsertMessage:
		return s.change(m.RelationID, x.WALStart, "c", nil, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return s.change(m.RelationID, x.WALStart, "u", m.OldTuple, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return s.change(m.RelationID, x.WALStart, "d", m.OldTuple, nil)
	case *pglogrepl.TruncateMessage:
		s.a.log.Warn("truncate is not streamed", "relations", m.RelationIDs)
	case *pglogrepl.CommitMessage:
		if s.tx == nil {
			return fmt.Errorf("commit at %s without begin", m.CommitLSN)
		}
		tx := s.tx
		s.tx = nil
		p := &pendingTx{end: m.TransactionEndLSN, remaining: len(tx.records)}
		s.acks.add(p)
		// The whole transaction goes out even if ctx ends meanwhile (the
		// producer is closed only after run returns), so that a clean stop
		// can confirm it and nothing is sent twice.
		for _, r := range tx.records {
			r.Metadata = p
			s.producer.Input() <- r
		}
		n := int64(len(tx.records))
		s.a.addStats(func(st *Stats) { st.Transactions++; st.Events += n })
	}
	return nil
}

// relation records a table description and looks up its primary key
// (pgoutput flags every column as key under REPLICA IDENTITY FULL).
func (s *stream) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	rows, err := s.conn.Query(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = $1 AND i.indisprimary`, m.RelationID)
	if err != nil {
		return fmt.Errorf("primary key of %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	pk, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("primary key of %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	r := &relation{msg: m, topic: s.a.cfg.TopicPrefix + "." + m.Namespace + "." + m.RelationName}
	for i, c := range m.Columns {
		if slices.Contains(pk, c.Name) || len(pk) == 0 && c.Flags&1 == 1 {
			r.key = append(r.key, i)
		}
	}
	s.relations[m.RelationID] = r
	return nil
}
