package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/pkg/jobs/job"
)

func TestHeldRecordsGiveBackWhatWasHeld(t *testing.T) {
	var originals []*sarama.ProducerMessage
	held := &heldRecords{topic: chTopic}
	for _, l := range benchLines(50, time.Now()) {
		e, err := csvEvent(l)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := record(chTopic, e)
		if err != nil {
			t.Fatal(err)
		}
		originals = append(originals, pm)
		held.add(pm)
	}
	// A record without a key and with an empty header value, too.
	originals = append(originals, &sarama.ProducerMessage{Topic: chTopic, Value: sarama.ByteEncoder("v"),
		Headers: []sarama.RecordHeader{{Key: []byte("ce_id"), Value: []byte("1")}, {Key: []byte("ce_x"), Value: []byte{}}}})
	held.add(originals[len(originals)-1])
	if held.Len() != len(originals) {
		t.Fatalf("%d records held, want %d", held.Len(), len(originals))
	}
	for i, want := range originals {
		got := held.At(i)
		if got.Topic != want.Topic || !bytes.Equal(got.Key, bytesOf(want.Key)) ||
			!bytes.Equal(got.Value, bytesOf(want.Value)) || len(got.Headers) != len(want.Headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, got, want)
		}
		for j := range want.Headers {
			if got.Headers[j].Key != string(want.Headers[j].Key) || !bytes.Equal(got.Headers[j].Value, want.Headers[j].Value) {
				t.Fatalf("record %d header %d: got %q=%q, want %q=%q", i, j, got.Headers[j].Key, got.Headers[j].Value,
					want.Headers[j].Key, want.Headers[j].Value)
			}
		}
	}
}

// The maker stamps a held CSV record with its send time in place: the
// bytes must be the line encoded with that time, and a record of another
// shape is left alone.
func TestStampCSVIsTheLineEncodedAtThatTime(t *testing.T) {
	m := &maker{fn: "chsink"}
	if err := m.prepare(4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // made before, sent after: sent times are later
	for i := range 4 {
		before := time.Now().Truncate(time.Millisecond)
		r, err := m.at(i)
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		got := r.Value
		line := m.lines[i]
		decoded, err := job.DecodeCSV(got)
		if err != nil || len(decoded) != 1 {
			t.Fatalf("record %d: %q: %v", i, got, err)
		}
		line.TS = decoded[0].TS
		if want := job.EncodeCSV(line); !bytes.Equal(got, want) || line.TS.Before(before) || line.TS.After(after) {
			t.Fatalf("record %d: %q, want %q stamped between %s and %s", i, got, want, before, after)
		}
	}
	l := benchLines(2, time.Now())[0]
	at := time.Date(2031, 5, 6, 7, 8, 9, 10e6, time.FixedZone("x", 7200))
	v := job.EncodeCSV(l)
	if !stampCSV(v, at) {
		t.Fatal("not stamped")
	}
	if l.TS = at; !bytes.Equal(v, job.EncodeCSV(l)) {
		t.Fatalf("stamped %q, want %q", v, job.EncodeCSV(l))
	}
	for _, other := range []string{"", "x,y", l.JobID.String() + ",create,2026-11-23,1,1,1,e\n", l.JobID.String() + ",create,2026-11-23 17:32:58,17954551786,1,1,e\n"} {
		v := []byte(other)
		if stampCSV(v, at) || string(v) != other {
			t.Errorf("%q: stamped as %q", other, v)
		}
	}
}
