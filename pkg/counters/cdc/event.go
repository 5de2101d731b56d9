package cdc

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/jobflow/jobflow/pkg/counters/cdc/envelope"
)

// Version is source.version of the events.
const Version = "jobflow-cdc/1"

// Unavailable is Debezium's placeholder for an unchanged TOASTed value the
// WAL does not carry.
const Unavailable = "__debezium_unavailable_value"

// change buffers the event of one row change until its transaction commits.
func (s *stream) change(relID uint32, lsn pglogrepl.LSN, op string, oldT, newT *pglogrepl.TupleData) error {
	if s.tx == nil {
		return fmt.Errorf("row change at %s outside a transaction", lsn)
	}
	rel := s.relations[relID]
	if rel == nil {
		return fmt.Errorf("row change at %s for unknown relation %d", lsn, relID)
	}
	before, err := s.row(rel, oldT, nil)
	if err != nil {
		return err
	}
	after, err := s.row(rel, newT, before)
	if err != nil {
		return err
	}
	keyRow := after
	if keyRow == nil {
		keyRow = before
	}
	key := map[string]any{}
	for _, i := range rel.key {
		name := rel.msg.Columns[i].Name
		v, ok := keyRow[name]
		if !ok {
			return fmt.Errorf("%s at %s: key column %s missing from the row image", rel.topic, lsn, name)
		}
		key[name] = v
	}
	src := envelope.Source{
		Version: Version, Connector: "postgresql", Name: s.a.cfg.TopicPrefix,
		TsMs: s.tx.commitTime.UnixMilli(), Snapshot: "false", DB: s.db,
		Schema: rel.msg.Namespace, Table: rel.msg.RelationName,
		TxID: int64(s.tx.xid), LSN: int64(lsn),
	}
	m, err := changeMessage(rel.topic, key, before, after, src, op)
	if err != nil {
		return fmt.Errorf("%s at %s: %w", rel.topic, lsn, err)
	}
	s.tx.records = append(s.tx.records, m)
	return nil
}

// changeMessage is the Kafka record of one change event: the key is the
// primary key as JSON, the value the Debezium envelope.
func changeMessage(topic string, key, before, after map[string]any, src envelope.Source, op string) (*sarama.ProducerMessage, error) {
	env := struct {
		Before      map[string]any  `json:"before"`
		After       map[string]any  `json:"after"`
		Source      envelope.Source `json:"source"`
		Op          string          `json:"op"`
		TsMs        int64           `json:"ts_ms"`
		Transaction any             `json:"transaction"`
	}{Before: before, After: after, Source: src, Op: op, TsMs: time.Now().UnixMilli()}
	value, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	k, err := json.Marshal(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return &sarama.ProducerMessage{
		Topic:   topic,
		Key:     sarama.ByteEncoder(k),
		Value:   sarama.ByteEncoder(value),
		Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}},
	}, nil
}

// row decodes a tuple into column values as Debezium's JSON converter
// writes them (numbers, booleans, strings; timestamps as ISO-8601 strings).
// An unchanged TOASTed column takes its value from old if it has one.
func (s *stream) row(rel *relation, t *pglogrepl.TupleData, old map[string]any) (map[string]any, error) {
	if t == nil {
		return nil, nil
	}
	if len(t.Columns) > len(rel.msg.Columns) {
		return nil, fmt.Errorf("%s: tuple has %d columns, relation %d", rel.topic, len(t.Columns), len(rel.msg.Columns))
	}
	row := make(map[string]any, len(t.Columns))
	for i, c := range t.Columns {
		col := rel.msg.Columns[i]
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			row[col.Name] = nil
		case pglogrepl.TupleDataTypeToast:
			if v, ok := old[col.Name]; ok {
				row[col.Name] = v
			} else {
				row[col.Name] = Unavailable
			}
		case pglogrepl.TupleDataTypeText:
			v, err := textValue(s.types, col.DataType, c.Data)
			if err != nil {
				return nil, fmt.Errorf("%s column %s: %w", rel.topic, col.Name, err)
			}
			row[col.Name] = v
		default:
			return nil, fmt.Errorf("%s column %s: unexpected tuple data type %q", rel.topic, col.Name, c.DataType)
		}
	}
	return row, nil
}

// textValue converts a column's PostgreSQL text form (as pgoutput and a
// text-format query send it) to its JSON value.
func textValue(types *pgtype.Map, oid uint32, data []byte) (any, error) {
	text := string(data)
	switch oid {
	case pgtype.BoolOID:
		return text == "t", nil
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			return nil, err
		}
		return json.Number(text), nil
	case pgtype.Float4OID, pgtype.Float8OID:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return text, nil
		}
		return f, nil
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		var ts time.Time
		if err := types.Scan(oid, pgtype.TextFormatCode, data, &ts); err != nil {
			return text, nil // infinity and the like stay text
		}
		return ts.UTC().Format("2006-01-02T15:04:05.000000Z"), nil
	default:
		// text, varchar, numeric (Debezium decimal.handling.mode=string),
		// json, uuid, dates...: the PostgreSQL text form.
		return text, nil
	}
}
