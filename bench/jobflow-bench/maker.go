package main

import (
	"bytes"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jobflow/jobflow/pkg/jobs/job"
)

// maker makes a run's records ahead of time, so that making them does not
// take the CPU the run measures.
type maker struct {
	fn    string
	recs  *heldRecords
	lines []job.EventLine
}

// prepare makes n records (at(0) ... at(n-1)).
func (m *maker) prepare(n int) (err error) {
	if m.fn == "pgsink" {
		m.recs, err = rowRecords(benchRows(n, time.Now()))
		return err
	}
	// Create and finish of each job in turn; the line's ts (which the
	// Kafka engine's latency is read from) is written when it is sent.
	m.lines = benchLines(n, time.Now())
	m.recs, err = lineRecords(m.lines)
	return err
}

// at is record i, stamped with the time it is sent (the Kafka timestamp
// the latency is measured from is set by the producer). A CSV line's ts
// and ts_ms are written over its held bytes (they keep their width), so
// that the producer's side costs a few hundred ns a record, not an
// encoding: the load it adds shares the cores with what is measured.
func (m *maker) at(i int) (*kgo.Record, error) {
	r := m.recs.At(i)
	if m.lines != nil {
		now := time.Now()
		if !stampCSV(r.Value, now) {
			m.lines[i].TS = now
			r.Value = job.EncodeCSV(m.lines[i])
		}
	}
	return r, nil
}

// stampCSV writes t as the ts and ts_ms of the CSV line in v, in place,
// if the ones there have the same width (false: v is left as it was).
func stampCSV(v []byte, t time.Time) bool {
	// job_id (a UUID's 36 characters), event, ts, ts_ms, ...
	if len(v) < 37 || v[36] != ',' {
		return false
	}
	e := bytes.IndexByte(v[37:], ',')
	if e < 0 {
		return false
	}
	ts := v[37+e+1:]
	const layout = "2006-01-02 15:04:05" // job's csvTime
	const tsLen = len(layout)
	if len(ts) < tsLen+1 || ts[tsLen] != ',' {
		return false
	}
	msField := ts[tsLen+1:]
	n := bytes.IndexByte(msField, ',')
	t = t.UTC()
	var scratch [40]byte
	text := t.AppendFormat(scratch[:0], layout)
	ms := strconv.AppendInt(text, t.UnixMilli(), 10)[len(text):]
	if len(text) != tsLen || n != len(ms) {
		return false
	}
	copy(ts, text)
	copy(msField, ms)
	return true
}

// warmFor is the number of records of the warm-up at rate (5 s, even:
// chsink events come in create+finish pairs).
func warmFor(rate int) int { return max(rate*5, 1000) &^ 1 }
