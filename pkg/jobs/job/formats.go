package job

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	jsoniter "github.com/json-iterator/go"

	"github.com/jobflow/jobflow/pkg/runtime/jsonscan"
)

// Row is one row of the PostgreSQL jobs table.
type Row struct {
	ID         uuid.UUID
	Status     Status
	CreateDate time.Time
	FinishDate *time.Time
	Sleep      int64
	DataSize   int64
	Checksum   string
	Error      string
}

// RowOf is the row a job's current state makes.
func RowOf(j Job) Row {
	return Row(j) // the same fields, without the JSON names
}

// ConnectRecord is a Kafka Connect "JSON with schema" record
// (JsonConverter with schemas.enable=true), the format the JDBC sink
// connector reads; timestamps use the logical type
// org.apache.kafka.connect.data.Timestamp (epoch milliseconds).
type ConnectRecord struct {
	Schema  ConnectSchema  `json:"schema"`
	Payload map[string]any `json:"payload"`
}

// ConnectSchema is a Kafka Connect struct schema.
type ConnectSchema struct {
	Type     string         `json:"type"`
	Name     string         `json:"name,omitempty"`
	Optional bool           `json:"optional"`
	Version  int            `json:"version,omitempty"`
	Field    string         `json:"field,omitempty"`
	Fields   []ConnectField `json:"fields,omitempty"`
}

// ConnectField is one field of a struct schema.
type ConnectField struct {
	Field    string `json:"field"`
	Type     string `json:"type"`
	Optional bool   `json:"optional"`
	Name     string `json:"name,omitempty"`
	Version  int    `json:"version,omitempty"`
}

const connectTimestamp = "org.apache.kafka.connect.data.Timestamp"

// RowSchema is the schema of the jobs table as Kafka Connect sees it.
var RowSchema = ConnectSchema{
	Type: "struct", Name: "jobflow.jobs", Optional: false,
	Fields: []ConnectField{
		{Field: "id", Type: "string"},
		{Field: "status", Type: "string"},
		{Field: "create_date", Type: "int64", Name: connectTimestamp, Version: 1},
		{Field: "finish_date", Type: "int64", Optional: true, Name: connectTimestamp, Version: 1},
		{Field: "sleep", Type: "int64"},
		{Field: "data_size", Type: "int64"},
		{Field: "checksum", Type: "string", Optional: true},
		{Field: "error", Type: "string", Optional: true},
	},
}

// EncodeRow writes r as a Kafka Connect JSON-with-schema record.
func EncodeRow(r Row) ([]byte, error) {
	p := map[string]any{
		"id": r.ID.String(), "status": string(r.Status),
		"create_date": r.CreateDate.UnixMilli(), "finish_date": nil,
		"sleep": r.Sleep, "data_size": r.DataSize, "checksum": nil, "error": nil,
	}
	if r.FinishDate != nil {
		p["finish_date"] = r.FinishDate.UnixMilli()
	}
	if r.Checksum != "" {
		p["checksum"] = r.Checksum
	}
	if r.Error != "" {
		p["error"] = r.Error
	}
	return json.Marshal(ConnectRecord{Schema: RowSchema, Payload: p})
}

// rowPayload is the payload of a jobs row, typed for decoding.
type rowPayload struct {
	ID         uuid.UUID `json:"id"`
	Status     Status    `json:"status"`
	CreateDate *int64    `json:"create_date"`
	FinishDate *int64    `json:"finish_date"`
	Sleep      int64     `json:"sleep"`
	DataSize   int64     `json:"data_size"`
	Checksum   *string   `json:"checksum"`
	Error      *string   `json:"error"`
}

// jsonAPI decodes the sinks' hot paths; it behaves as encoding/json does.
var jsonAPI = jsoniter.ConfigCompatibleWithStandardLibrary

// DecodeRow reads a JSON-with-schema jobs record and checks it.
func DecodeRow(data []byte) (Row, error) {
	// Only the payload is decoded; the schema (the same in every record)
	// is passed over by jsonscan: decoding or skipping it with encoding/json
	// or jsoniter was a large part of pgsink's CPU (docs/BENCHMARKS.md).
	var rec struct {
		Payload *rowPayload `json:"payload"`
	}
	if start, end, found, err := jsonscan.Member(data, "payload"); err == nil && found {
		err = jsonAPI.Unmarshal(data[start:end], &rec.Payload)
		if err != nil {
			return Row{}, fmt.Errorf("invalid JSON payload: %w", err)
		}
	} else if err := jsonAPI.Unmarshal(data, &rec); err != nil {
		return Row{}, fmt.Errorf("invalid JSON: %w", err)
	}
	p := rec.Payload
	if p == nil {
		return Row{}, fmt.Errorf("jobs record has no payload")
	}
	if p.ID == uuid.Nil {
		return Row{}, fmt.Errorf("jobs record has no id")
	}
	if !p.Status.Valid() {
		return Row{}, fmt.Errorf("jobs record %s: invalid status %q", p.ID, p.Status)
	}
	if p.CreateDate == nil {
		return Row{}, fmt.Errorf("jobs record %s has no create_date", p.ID)
	}
	r := Row{ID: p.ID, Status: p.Status, CreateDate: time.UnixMilli(*p.CreateDate).UTC(), Sleep: p.Sleep, DataSize: p.DataSize}
	if p.FinishDate != nil {
		t := time.UnixMilli(*p.FinishDate).UTC()
		r.FinishDate = &t
	}
	if p.Checksum != nil {
		r.Checksum = *p.Checksum
	}
	if p.Error != nil {
		r.Error = *p.Error
	}
	return r, nil
}
