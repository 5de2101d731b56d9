// Package envelope is the Debezium change event value, JSON without schema
// (Debezium's JsonConverter with schemas.enable=false):
//
//	{"before": {...} | null, "after": {...} | null,
//	 "source": {"version":..,"connector":"postgresql","name":"dialogs","ts_ms":..,"snapshot":"false",
//	            "db":"dialogs","schema":"public","table":"messages","txId":..,"lsn":..,"xmin":null},
//	 "op": "c" | "u" | "d" | "r", "ts_ms": .., "transaction": null}
//
// The record key is the primary key as a JSON object, e.g. {"id":42}. The
// CDC source (pkg/cdc) writes it; the counter function (pkg/counters) reads
// it, and reads nothing a real Debezium PostgreSQL connector does not write.
package envelope

import (
	"encoding/json"
	"fmt"
)

// Operations.
const (
	OpCreate   = "c"
	OpUpdate   = "u"
	OpDelete   = "d"
	OpRead     = "r" // a row read by a snapshot
	OpTruncate = "t"
	OpMessage  = "m" // a logical decoding message (pg_logical_emit_message), no row
)

// Snapshot is source.snapshot: Debezium writes a string ("true", "false",
// "last", "first", "first_in_data_collection", "last_in_data_collection",
// "incremental"), its documentation's examples and older connectors a
// boolean, and some events null. All are accepted; a boolean is kept as
// "true" or "false".
type Snapshot string

// UnmarshalJSON accepts a string, a boolean or null.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "null":
		*s = ""
		return nil
	case "true", "false":
		*s = Snapshot(b)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("source.snapshot %s: want a string or a boolean", b)
	}
	*s = Snapshot(str)
	return nil
}

// InSnapshot reports whether the event was read by a snapshot (initial or
// incremental) rather than streamed from the log.
func (s Snapshot) InSnapshot() bool { return s != "" && s != "false" }

// Source is the source block of a Debezium PostgreSQL change event.
type Source struct {
	Version   string `json:"version"`
	Connector string `json:"connector"`
	// Name is the logical server name (Debezium's topic.prefix).
	Name     string   `json:"name"`
	TsMs     int64    `json:"ts_ms"`
	Snapshot Snapshot `json:"snapshot"`
	DB       string   `json:"db"`
	Schema   string   `json:"schema"`
	Table    string   `json:"table"`
	TxID     int64    `json:"txId"`
	// LSN is the position of the change's WAL record.
	LSN  int64  `json:"lsn"`
	Xmin *int64 `json:"xmin"`
}

// Envelope is a change event value. Before and After stay raw so that each
// reader decodes the row type it knows.
type Envelope struct {
	Before      json.RawMessage `json:"before"`
	After       json.RawMessage `json:"after"`
	Source      Source          `json:"source"`
	Op          string          `json:"op"`
	TsMs        int64           `json:"ts_ms"`
	Transaction json.RawMessage `json:"transaction"`
}

// HasBefore and HasAfter report whether the row images are present.
func (e *Envelope) HasBefore() bool { return present(e.Before) }

// HasAfter reports whether the after image is present.
func (e *Envelope) HasAfter() bool { return present(e.After) }

func present(r json.RawMessage) bool { return len(r) > 0 && string(r) != "null" }

// Decode parses a change event value. An empty value (a Debezium tombstone,
// which follows a delete when tombstones.on.delete is on) returns nil, nil.
func Decode(b []byte) (*Envelope, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("debezium envelope: %w", err)
	}
	// The JsonConverter with schemas.enable=true wraps it as {"schema":..,"payload":..}.
	if e.Op == "" && e.Source.Table == "" {
		var wrapped struct {
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(b, &wrapped); err == nil && present(wrapped.Payload) {
			return Decode(wrapped.Payload)
		}
	}
	switch e.Op {
	case OpCreate, OpRead:
		if !e.HasAfter() {
			return nil, fmt.Errorf("debezium envelope: op %q without after", e.Op)
		}
	case OpUpdate:
		if !e.HasAfter() {
			return nil, fmt.Errorf("debezium envelope: op u without after")
		}
	case OpDelete:
		if !e.HasBefore() {
			return nil, fmt.Errorf("debezium envelope: op d without before")
		}
	case OpTruncate:
	case OpMessage:
		return &e, nil // not about a table: readers ignore it
	default:
		return nil, fmt.Errorf("debezium envelope: unknown op %q", e.Op)
	}
	if e.Source.Table == "" {
		return nil, fmt.Errorf("debezium envelope: source.table is missing")
	}
	return &e, nil
}
