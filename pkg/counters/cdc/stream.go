package cdc

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

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

// end confirms what Kafka acknowledged, then ends the stream with CopyDone
// and waits for the server's answer: a status update followed at once by
// closing the connection may never be applied to the slot.
func (s *stream) end() {
	if err := s.sendStatus(context.Background()); err != nil {
		s.a.log.Warn("final status update", "err", err)
		return
	}
	_ = s.repl.Conn().SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := pglogrepl.SendStandbyCopyDone(context.Background(), s.repl); err != nil {
		s.a.log.Warn("end replication", "err", err)
	}
}
