package cebatch

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// sameEvent reports how a and b differ as the receiver of a batch sees
// them ("" for not at all): attributes, extensions and data bytes.
// DataBase64 is left out: it says how the data was written, not what it is.
func sameEvent(a, b *event.Event) string {
	aj, bj := *a, *b
	aj.DataBase64, bj.DataBase64 = false, false
	if aj.String() != bj.String() || !bytes.Equal(a.DataEncoded, b.DataEncoded) ||
		a.DataContentType() != b.DataContentType() {
		return "got\n" + bj.String() + "\nwant\n" + aj.String()
	}
	return ""
}

// appendedRoundTrip writes e with AppendEvent and reads it back with the
// SDK's decoder and with ours; "" when both give e.
func appendedRoundTrip(e *event.Event) string {
	js, ok := AppendEvent(nil, e)
	if !ok {
		return "not written"
	}
	var sdk event.Event
	if err := json.Unmarshal(js, &sdk); err != nil {
		return "SDK cannot read " + string(js) + ": " + err.Error()
	}
	if d := sameEvent(e, &sdk); d != "" {
		return "SDK reads " + string(js) + " as " + d
	}
	evs, err := decodeAll(append(append([]byte{'['}, js...), ']'))
	if err != nil {
		return "cebatch cannot read " + string(js) + ": " + err.Error()
	}
	return sameEvent(e, &evs[0])
}

// Every event the SDK reads, written back by AppendEvent, is read as the
// same event, by the SDK and by this package.
func TestAppendEventIsReadBackAsTheSameEvent(t *testing.T) {
	n := 0
	for _, raw := range decoderCases() {
		var e event.Event
		if json.Unmarshal([]byte(raw), &e) != nil || e.Validate() != nil {
			continue
		}
		n++
		if d := appendedRoundTrip(&e); d != "" {
			t.Errorf("%s\n  %s", raw, d)
		}
	}
	if n < 40 {
		t.Fatalf("only %d valid cases", n)
	}
}

// What functions emit: JSON data from a struct, text data set as bytes
// (which the SDK marks base64), binary data, odd strings and extensions.
func TestAppendEventWritesTextDataAsAString(t *testing.T) {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/jobflow/converter")
	e.SetType("dev.jobflow.job.csv")
	e.SetSubject("a \"quoted\"\tsubject \u00e9\u2028")
	e.SetTime(time.Date(2026, 12, 2, 17, 0, 0, 123456789, time.FixedZone("x", 3600)))
	e.SetExtension("partitionkey", "k\x01")
	e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if err := e.SetData("text/csv", []byte("a,b\n\"c\",d\n")); err != nil {
		t.Fatal(err)
	}
	js, _ := AppendEvent(nil, &e)
	if !bytes.Contains(js, []byte(`"data":"a,b\n\"c\",d\n"`)) {
		t.Errorf("text data not written as a string: %s", js)
	}
	if d := appendedRoundTrip(&e); d != "" {
		t.Error(d)
	}
	// Plain attributes, as the converter's: the batch reader's fast path.
	plain := e.Clone()
	plain.SetSubject("job-1")
	plain.SetExtension("partitionkey", "job-1")
	js, _ = AppendEvent(nil, &plain)
	var fast event.Event
	if !(&decoder{}).fast(js, string(js), &fast) {
		t.Errorf("the batch reader's fast path refuses %s", js)
	}
	for name, set := range map[string]func(*event.Event){
		"JSON struct":      func(e *event.Event) { _ = e.SetData(event.ApplicationJSON, map[string]int{"a": 1}) },
		"JSON bytes":       func(e *event.Event) { _ = e.SetData(event.ApplicationJSON, []byte(`{"a":[1,2]}`)) },
		"binary bytes":     func(e *event.Event) { _ = e.SetData("application/octet-stream", []byte{0xff, 0, 1}) },
		"no content type":  func(e *event.Event) { e.DataEncoded = []byte(`[1]`) },
		"bad JSON bytes":   func(e *event.Event) { _ = e.SetData(event.ApplicationJSON, []byte(`{"a"`)) },
		"int extension":    func(e *event.Event) { e.SetExtension("n", 7) },
		"no data":          func(e *event.Event) { e.DataEncoded = nil },
		"json with params": func(e *event.Event) { _ = e.SetData("application/json; charset=utf-8", []byte(` {"a":1}`)) },
	} {
		c := e.Clone()
		set(&c)
		if d := appendedRoundTrip(&c); d != "" {
			t.Errorf("%s: %s", name, d)
		}
	}
}

// JSON data that is not JSON cannot be in a batch: the caller sends the
// event alone, to get its own answer.
func TestAppendEventRefusesInvalidJSONData(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType("t")
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = []byte(`{"a":`)
	if js, ok := AppendEvent([]byte("[x"), &e); ok || string(js) != "[x" {
		t.Errorf("invalid JSON data written: %s %v", js, ok)
	}
}
