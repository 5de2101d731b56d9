package job

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

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

// EncodeCSV writes lines as CSV, one per line, newline-terminated, with
// encoding/csv.
func EncodeCSV(lines ...EventLine) []byte {
	c := csvWriters.Get().(*csvWriter)
	defer csvWriters.Put(c)
	c.buf.Reset()
	for _, l := range lines {
		ts := l.TS.UTC()
		rec := [len(csvColumns)]string{l.JobID.String(), string(l.Event), ts.Format(csvTime),
			strconv.FormatInt(ts.UnixMilli(), 10), strconv.FormatInt(l.Sleep, 10),
			strconv.FormatInt(l.DataSize, 10), l.EventID}
		_ = c.w.Write(rec[:]) // a bytes.Buffer never fails
	}
	c.w.Flush()
	return bytes.Clone(c.buf.Bytes())
}

// csvWriter is a csv.Writer on its buffer, kept in a pool: a new one
// allocates a 4 KB buffer, three times the cost of writing one line.
type csvWriter struct {
	buf bytes.Buffer
	w   *csv.Writer
}

var csvWriters = sync.Pool{New: func() any {
	c := &csvWriter{}
	c.w = csv.NewWriter(&c.buf)
	return c
}}

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
