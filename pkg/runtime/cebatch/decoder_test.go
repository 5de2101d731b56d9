package cebatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Events with JSON data (an object or array), wherever it is, must decode
// exactly as the SDK decodes them, errors included.
func TestJSONDataIsTheSDKsDecoding(t *testing.T) {
	big := `{"schema":{"type":"struct","fields":[{"field":"id","type":"string"},{"field":"n","type":"int64"}]},"payload":{"id":"x\"}","n":1}}`
	attrs := `"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2026-11-23T17:32:58.123Z","partitionkey":"k"`
	for name, raw := range map[string]string{
		"JSON object data":       `{` + attrs + `,"datacontenttype":"application/json","data":` + big + `}`,
		"data first":             `{"data":` + big + `,` + attrs + `,"datacontenttype":"application/json"}`,
		"no content type":        `{` + attrs + `,"data":` + big + `}`,
		"array data":             `{` + attrs + `,"datacontenttype":"application/json","data":[` + big + `,` + big + `]}`,
		"small data":             `{` + attrs + `,"datacontenttype":"application/json","data":{"a":1}}`,
		"string data":            `{` + attrs + `,"datacontenttype":"text/csv","data":"a,b\nc"}`,
		"base64 data":            `{` + attrs + `,"datacontenttype":"application/json","data_base64":"eyJhIjoxfQ=="}`,
		"no data":                `{` + attrs + `}`,
		"object data, text type": `{` + attrs + `,"datacontenttype":"text/plain","data":` + big + `}`,
		"data_base64 and data":   `{` + attrs + `,"data_base64":"eyJhIjoxfQ==","data":` + big + `}`,
		"missing id":             `{"specversion":"1.0","source":"/s","type":"t","data":` + big + `}`,
		"unbalanced data":        `{` + attrs + `,"data":{"a":[` + strings.Repeat("1,", 40) + `1}}`,
		"spec 0.3":               `{"specversion":"0.3","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":` + big + `}`,
		"escaped key":            `{` + attrs + `,"d\u0061ta":` + big + `}`,
	} {
		if diff := sameAsSDK(&decoder{}, []byte(raw), true); diff != "" {
			t.Errorf("%s: %s\n  %s", name, raw, diff)
		}
	}
}

// sameAsSDK reports how decoder's decoding of raw differs from the SDK's
// (UnmarshalJSON, then Validate), "" if it does not. dec is reused across
// calls, as within a batch. Unless strict, invalid JSON data the decoder
// let through is no difference (see below).
func sameAsSDK(dec *decoder, raw []byte, strict bool) string {
	var want, got event.Event
	wantErr := want.UnmarshalJSON(raw)
	if wantErr == nil {
		if err := want.Validate(); err != nil {
			wantErr = err
		}
	}
	valid, gotErr := dec.decode(raw, string(raw), &got)
	if gotErr == nil && !valid {
		gotErr = got.Validate()
	}
	if valid && gotErr == nil && got.Validate() != nil {
		return "decode said valid, Validate disagrees: " + got.Validate().Error()
	}
	if (wantErr == nil) != (gotErr == nil) {
		// The one difference by design: JSON data (an object or array) is
		// not checked by the decoder; its consumer decodes and so checks it.
		if !strict && wantErr != nil && !json.Valid(got.Data()) && len(got.Data()) > 0 && (got.Data()[0] == '{' || got.Data()[0] == '[') {
			return ""
		}
		return "SDK error " + fmt.Sprint(wantErr) + ", decoder error " + fmt.Sprint(gotErr)
	}
	if wantErr != nil {
		return ""
	}
	if !bytes.Equal(got.Data(), want.Data()) || (got.DataEncoded == nil) != (want.DataEncoded == nil) ||
		got.DataBase64 != want.DataBase64 || !reflect.DeepEqual(got.Context, want.Context) || !reflect.DeepEqual(got.FieldErrors, want.FieldErrors) {
		return fmt.Sprintf("decoder = %v (data %q), SDK = %v (data %q)", got, got.Data(), want, want.Data())
	}
	return ""
}

// decoderCases are structured events in many forms, common and not.
func decoderCases() []string {
	csv := `"1d1e3b0c-5b3e-4c55-9a57-111111111111,create,1763919178123,100,1024,ev-1\n"`
	base := map[string]string{
		"specversion": `"1.0"`, "id": `"ev-1"`, "source": `"/apis/v1/namespaces/jobflow/kafkasources/chsink-source#clickhouse-topic"`,
		"type": `"dev.jobflow.job.csv"`, "time": `"2026-11-23T17:32:58.123Z"`, "subject": `"partition:0#5"`,
		"datacontenttype": `"text/csv"`, "partitionkey": `"1d1e3b0c"`, "key": `"1d1e3b0c"`, "data": csv,
	}
	order := []string{"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "partitionkey", "key", "data"}
	build := func(m map[string]string, keys []string, sep string) string {
		var b strings.Builder
		b.WriteString("{")
		first := true
		for _, k := range keys {
			v, ok := m[k]
			if !ok {
				continue
			}
			if !first {
				b.WriteString("," + sep)
			}
			first = false
			b.WriteString(`"` + k + `":` + sep + v)
		}
		b.WriteString("}")
		return b.String()
	}
	with := func(k, v string) map[string]string {
		m := maps.Clone(base)
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	var out []string
	out = append(out, build(base, order, ""), build(base, order, " "), build(base, order, "\n\t"))
	rev := slices.Clone(order)
	slices.Reverse(rev)
	out = append(out, build(base, rev, ""))
	for _, c := range []struct{ k, v string }{
		{"specversion", `"0.3"`}, {"specversion", `"2.0"`}, {"specversion", `1`}, {"specversion", ""},
		{"id", `""`}, {"id", `"  "`}, {"id", `" x "`}, {"id", `"a\"b"`}, {"id", `"\u0041"`}, {"id", `5`}, {"id", ""},
		{"source", `""`}, {"source", `"%zz"`}, {"source", `"#"`}, {"source", `" "`}, {"source", `"https://x.example/a?b=c#d"`}, {"source", `"/s"`}, {"source", ""},
		{"type", `""`}, {"type", `"t"`}, {"type", ""},
		{"time", `""`}, {"time", `"yesterday"`}, {"time", `"2026-11-23T17:32:58+01:00"`}, {"time", `"2026-11-23T17:32:58.123456789Z"`},
		{"subject", `""`}, {"subject", `" "`}, {"subject", ""},
		{"datacontenttype", `""`}, {"datacontenttype", `" "`}, {"datacontenttype", `"a b"`}, {"datacontenttype", `"text/csv; charset=utf-8"`},
		{"datacontenttype", `"application/json"`}, {"datacontenttype", `"text/json"`}, {"datacontenttype", `"application/cloudevents+json"`},
		{"datacontenttype", `"text/plain"`}, {"datacontenttype", `"Text/CSV"`}, {"datacontenttype", ""},
		{"partitionkey", `""`}, {"partitionkey", `1`}, {"partitionkey", `true`}, {"partitionkey", `null`}, {"partitionkey", `{"a":1}`}, {"partitionkey", `"é"`},
		{"Partitionkey", `"x"`}, {"part_key", `"x"`}, {"averyveryveryverylongextensionname", `"x"`}, {"dataschema", `"https://s.example/x"`},
		{"schemaurl", `"https://s.example/x"`}, {"datacontentencoding", `"base64"`}, {"data_base64", `"eyJhIjoxfQ=="`},
		{"data", `""`}, {"data", `"a\nb\\c\"d\/e\tf\rg\bh\fi"`}, {"data", `"\u00e9"`}, {"data", `"\x"`}, {"data", `"é"`}, {"data", `{"a":1}`},
		{"data", `[1,2]`}, {"data", `null`}, {"data", `5`}, {"data", `true`}, {"data", `"line\n`}, {"data", ""},
	} {
		keys := order
		if !slices.Contains(order, c.k) {
			keys = append(slices.Clone(order), c.k)
		}
		out = append(out, build(with(c.k, c.v), keys, ""))
	}
	for _, ct := range []string{`"application/json"`, ""} {
		for _, d := range []string{`{"a":[1,{"b":"}"}]}`, `[{"x":1}]`, `"text"`, `null`, `5`, `{"a":}`, `{"a":1`} {
			m := with("datacontenttype", ct)
			m["data"] = d
			out = append(out, build(m, order, ""), build(m, rev, ""))
		}
	}
	out = append(out,
		`{}`, `[]`, `null`, ``, `{`, `{"specversion":"1.0"`, build(base, order, "")+`x`, build(base, order, "")+` `,
		`{"specversion":"1.0","specversion":"1.0","id":"1","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":"a","ext":"b"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t",}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t" "x":"y"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","d\u0061ta":"x"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","":"x"}`,
	)
	return out
}

// The decoder must give what the SDK gives, for every form, with a fresh
// decoder and with one that has seen the other forms before.
func TestDecoderIsTheSDKsDecoding(t *testing.T) {
	var shared decoder
	fast := 0
	for _, raw := range decoderCases() {
		if diff := sameAsSDK(&decoder{}, []byte(raw), false); diff != "" {
			t.Errorf("%s\n  %s", raw, diff)
		}
		if diff := sameAsSDK(&shared, []byte(raw), false); diff != "" {
			t.Errorf("%s (decoder reused)\n  %s", raw, diff)
		}
		var e event.Event
		if (&decoder{}).fast([]byte(raw), raw, &e) {
			fast++
		}
	}
	// The common forms must take the fast path, or it is dead code.
	if fast < 40 {
		t.Errorf("only %d of the cases took the fast path", fast)
	}
}

func FuzzDecoder(f *testing.F) {
	for _, raw := range decoderCases() {
		f.Add([]byte(raw))
	}
	var dec decoder
	f.Fuzz(func(t *testing.T, raw []byte) {
		if diff := sameAsSDK(&dec, raw, false); diff != "" {
			t.Errorf("%q\n  %s", raw, diff)
		}
	})
}

// The events of a batch share the batch's text, yet each is its own:
// changing or growing one's data or attributes leaves the others as they
// were.
func TestTheEventsOfABatchAreApart(t *testing.T) {
	batch := func() []byte {
		return bytes.ReplaceAll(csvBatch(3), []byte(`"type":`), []byte(`"subject":"job","type":`))
	}
	body := batch()
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
	events, err := Read(r)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(events))
	for i, e := range events {
		want[i] = string(e.Data()) + "|" + e.Subject() + "|" + e.DataContentType() + "|" + e.Time().String()
	}
	first := &events[0]
	first.DataEncoded = append(first.DataEncoded, "appended past the end"...)
	first.DataEncoded[0] = 'X'
	first.SetSubject("changed")
	first.SetTime(time.Unix(0, 0))
	if err := first.SetData("text/plain", []byte("other")); err != nil {
		t.Fatal(err)
	}
	for i, e := range events[1:] {
		got := string(e.Data()) + "|" + e.Subject() + "|" + e.DataContentType() + "|" + e.Time().String()
		if got != want[i+1] {
			t.Errorf("event %d changed with the first: %q, was %q", i+1, got, want[i+1])
		}
	}
	if !bytes.Equal(body, batch()) {
		t.Error("the request's body changed")
	}
}

// JSON data is the batch's own bytes, yet growing one event's data must
// not write into the next event or the request's body.
func TestJSONDataIsNotWrittenThrough(t *testing.T) {
	body := []byte(`[{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}},` +
		`{"specversion":"1.0","id":"2","source":"/s","type":"t","data":{"b":2}}]`)
	orig := bytes.Clone(body)
	events, err := decodeAll(body)
	if err != nil {
		t.Fatal(err)
	}
	events[0].DataEncoded = append(events[0].DataEncoded, "XXXXXXXXXXXXXXXXXXXXXXXXXXXX"...)
	if string(events[1].Data()) != `{"b":2}` || !bytes.Equal(body, orig) {
		t.Fatalf("second event's data %q, body changed: %v", events[1].Data(), !bytes.Equal(body, orig))
	}
}
