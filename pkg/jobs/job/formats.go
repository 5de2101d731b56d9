package job

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	return Row{ID: j.ID, Status: j.Status, CreateDate: j.CreateDate, FinishDate: j.FinishDate,
		Sleep: j.Sleep, DataSize: j.DataSize, Checksum: j.Checksum, Error: j.Error}
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

// EventLine is one row of the ClickHouse job_events table, written as a CSV
// line: job_id,event,ts,ts_ms,sleep,data_size,event_id — for example
// `6f1c…,create,2026-11-23 17:00:00,1795453200123,100,1024,9d2e…`.
// ts is second-precision DateTime (ClickHouse 18.16 has no DateTime64),
// ts_ms the same instant in epoch milliseconds.
type EventLine struct {
	JobID    uuid.UUID
	Event    Status
	TS       time.Time
	Sleep    int64
	DataSize int64
	EventID  string
}

// CSVColumns are the columns of a line, in order.
var CSVColumns = csvColumns[:]

var csvColumns = [...]string{"job_id", "event", "ts", "ts_ms", "sleep", "data_size", "event_id"}

const csvTime = "2006-01-02 15:04:05"

// EncodeCSV writes lines as CSV, one per line, newline-terminated, as
// encoding/csv writes them.
func EncodeCSV(lines ...EventLine) []byte {
	b := make([]byte, 0, 112*len(lines))
	for _, l := range lines {
		b = appendCSV(b, l)
	}
	return b
}

// appendCSV appends l's CSV line to b. Lines whose text fields need no
// quoting (every line jobflow makes: its event ids are UUIDs) are appended
// directly; any other goes through encoding/csv, which quotes them.
func appendCSV(b []byte, l EventLine) []byte {
	ts := l.TS.UTC()
	if !plainCSVField(string(l.Event)) || !plainCSVField(l.EventID) {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{l.JobID.String(), string(l.Event), ts.Format(csvTime),
			strconv.FormatInt(ts.UnixMilli(), 10), strconv.FormatInt(l.Sleep, 10),
			strconv.FormatInt(l.DataSize, 10), l.EventID})
		w.Flush()
		return append(b, buf.Bytes()...)
	}
	b = append(b, l.JobID.String()...)
	b = append(append(b, ','), l.Event...)
	b = ts.AppendFormat(append(b, ','), csvTime)
	b = strconv.AppendInt(append(b, ','), ts.UnixMilli(), 10)
	b = strconv.AppendInt(append(b, ','), l.Sleep, 10)
	b = strconv.AppendInt(append(b, ','), l.DataSize, 10)
	b = append(append(b, ','), l.EventID...)
	return append(b, '\n')
}

// plainCSVField is whether encoding/csv writes f as it is (its
// fieldNeedsQuotes is false): no comma, quote, CR or LF, not `\.`, and
// not starting with a space.
func plainCSVField(f string) bool {
	if f == "" {
		return true
	}
	if f == `\.` || strings.ContainsAny(f, ",\"\r\n") {
		return false
	}
	r, _ := utf8.DecodeRuneInString(f)
	return !unicode.IsSpace(r)
}

// DecodeCSV reads the lines of a CSV payload and checks each.
func DecodeCSV(data []byte) ([]EventLine, error) {
	return AppendCSVLines(nil, data)
}

// AppendCSVLines appends the lines of a CSV payload to dst, checking each;
// on an error dst is returned as it was.
func AppendCSVLines(dst []EventLine, data []byte) ([]EventLine, error) {
	if out, ok, err := appendPlainCSV(dst, data); ok {
		return out, err
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = len(CSVColumns)
	recs, err := r.ReadAll()
	if err != nil {
		return dst, fmt.Errorf("invalid CSV (want %v): %w", CSVColumns, err)
	}
	return appendLines(dst, recs)
}

// appendPlainCSV reads CSV without quotes or carriage returns (what
// EncodeCSV writes for every line: its fields hold no comma, quote or
// newline) as encoding/csv would, without its per-call buffers and
// without a slice per line; ok is false for any other input (a line with
// the wrong number of fields included), which then goes through
// encoding/csv, so that errors read the same.
func appendPlainCSV(dst []EventLine, data []byte) (out []EventLine, ok bool, err error) {
	if bytes.IndexByte(data, '"') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		return dst, false, nil
	}
	text := string(data) // the lines' strings are its substrings
	// Every line's shape is checked before any is parsed, as encoding/csv
	// reads them all before parseLine sees the first.
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" {
			continue // encoding/csv skips empty lines
		}
		if strings.Count(line, ",") != len(CSVColumns)-1 {
			return dst, false, nil // encoding/csv reports it
		}
		n++
	}
	if n == 0 {
		return dst, true, fmt.Errorf("empty CSV")
	}
	out = slices.Grow(dst, n)
	i := 0
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" {
			continue
		}
		var rec [len(csvColumns)]string
		for f := range rec {
			rec[f], line, _ = strings.Cut(line, ",")
		}
		i++
		l, err := parseLine(rec[:])
		if err != nil {
			return dst, true, fmt.Errorf("CSV line %d: %w", i, err)
		}
		out = append(out, l)
	}
	return out, true, nil
}

func appendLines(dst []EventLine, recs [][]string) ([]EventLine, error) {
	if len(recs) == 0 {
		return dst, fmt.Errorf("empty CSV")
	}
	out := slices.Grow(dst, len(recs))
	for i, rec := range recs {
		l, err := parseLine(rec)
		if err != nil {
			return dst, fmt.Errorf("CSV line %d: %w", i+1, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func parseLine(rec []string) (EventLine, error) {
	var l EventLine
	id, err := uuid.Parse(rec[0])
	if err != nil {
		return l, fmt.Errorf("job_id: %w", err)
	}
	ev := Status(rec[1])
	if !ev.Valid() {
		return l, fmt.Errorf("event %q: want create, finish or fail", rec[1])
	}
	ms, err := strconv.ParseInt(rec[3], 10, 64)
	if err != nil {
		return l, fmt.Errorf("ts_ms: %w", err)
	}
	sleep, err := strconv.ParseInt(rec[4], 10, 64)
	if err != nil || sleep < 0 {
		return l, fmt.Errorf("sleep %q: want a non-negative integer", rec[4])
	}
	size, err := strconv.ParseInt(rec[5], 10, 64)
	if err != nil || size < 0 {
		return l, fmt.Errorf("data_size %q: want a non-negative integer", rec[5])
	}
	if rec[6] == "" {
		return l, fmt.Errorf("event_id is empty")
	}
	return EventLine{JobID: id, Event: ev, TS: time.UnixMilli(ms).UTC(), Sleep: sleep, DataSize: size, EventID: rec[6]}, nil
}
