package job

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestRowRoundTripAndConnectSchema(t *testing.T) {
	fin := time.UnixMilli(1795455178730).UTC()
	in := Row{ID: uuid.New(), Status: StatusFinish, CreateDate: time.UnixMilli(1795455178628).UTC(), FinishDate: &fin,
		Sleep: 99, DataSize: 1024, Checksum: "abc"}
	b, err := EncodeRow(in)
	if err != nil {
		t.Fatal(err)
	}
	// What Kafka Connect's JsonConverter (schemas.enable=true) expects.
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	schema := rec["schema"].(map[string]any)
	if schema["type"] != "struct" || len(schema["fields"].([]any)) != 8 {
		t.Fatalf("schema = %v", schema)
	}
	payload := rec["payload"].(map[string]any)
	if payload["create_date"].(float64) != 1795455178628 || payload["status"] != "finish" || payload["error"] != nil {
		t.Fatalf("payload = %v", payload)
	}
	out, err := DecodeRow(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Status != in.Status || !out.CreateDate.Equal(in.CreateDate) || !out.FinishDate.Equal(fin) ||
		out.Sleep != 99 || out.DataSize != 1024 || out.Checksum != "abc" || out.Error != "" {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
}

func TestDecodeRowRejects(t *testing.T) {
	id := uuid.New().String()
	for name, data := range map[string]string{
		"not json":       `nope`,
		"no payload":     `{"schema":{}}`,
		"no id":          `{"payload":{"status":"create","create_date":1}}`,
		"bad status":     `{"payload":{"id":"` + id + `","status":"done","create_date":1}}`,
		"no create_date": `{"payload":{"id":"` + id + `","status":"create"}}`,
		"two values":     `{"payload":{}} {}`,
	} {
		if _, err := DecodeRow([]byte(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	a := EventLine{JobID: uuid.New(), Event: StatusCreate, TS: time.UnixMilli(1795455178628).UTC(), Sleep: 100, DataSize: 5, EventID: "e1"}
	b := EventLine{JobID: a.JobID, Event: StatusFinish, TS: time.UnixMilli(1795455178730).UTC(), Sleep: 100, DataSize: 5, EventID: "e2"}
	data := EncodeCSV(a, b)
	want := a.JobID.String() + ",create,2026-11-23 17:32:58,1795455178628,100,5,e1\n"
	if !strings.HasPrefix(string(data), want) {
		t.Fatalf("csv = %q, want prefix %q", data, want)
	}
	lines, err := DecodeCSV(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0] != a || lines[1] != b {
		t.Fatalf("round trip: %+v", lines)
	}
}

func TestDecodeCSVRejects(t *testing.T) {
	id := uuid.New().String()
	for name, data := range map[string]string{
		"empty":         ``,
		"few columns":   id + ",create,2026-11-23 17:32:58,1\n",
		"bad id":        "x,create,2026-11-23 17:32:58,1,1,1,e\n",
		"bad event":     id + ",started,2026-11-23 17:32:58,1,1,1,e\n",
		"negative size": id + ",create,2026-11-23 17:32:58,1,1,-1,e\n",
		"no event id":   id + ",create,2026-11-23 17:32:58,1,1,1,\n",
	} {
		if _, err := DecodeCSV([]byte(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestStatusRankNeverBackwards(t *testing.T) {
	if !(StatusUnknown.Rank() < StatusCreate.Rank() && StatusCreate.Rank() < StatusFinish.Rank() && StatusFinish.Rank() == StatusFail.Rank()) {
		t.Fatal("status order broken")
	}
	if Status("x").Valid() || !StatusFail.Valid() {
		t.Fatal("Valid broken")
	}
}

func TestDerivedIDStable(t *testing.T) {
	if first, again := DerivedID("a", "b"), DerivedID("a", "b"); first != again || DerivedID("a", "b") == DerivedID("ab") || DerivedID("a", "b") == DerivedID("a", "c") {
		t.Fatal("DerivedID must be stable and separate its parts")
	}
}

// DecodeCSV's fast path for plain lines must read exactly what
// encoding/csv reads, and leave everything else to it.
func TestDecodeCSVFastPathAgreesWithEncodingCSV(t *testing.T) {
	id := uuid.New().String()
	line := id + ",create,2026-11-23 17:32:58,1795455178628,100,5,e1"
	for name, data := range map[string]string{
		"one line":           line + "\n",
		"no final newline":   line,
		"two lines":          line + "\n" + strings.Replace(line, "create", "finish", 1) + "\n",
		"blank lines":        "\n" + line + "\n\n",
		"crlf":               line + "\r\n",
		"quoted":             strings.Replace(line, ",e1", `,"e,1"`, 1) + "\n",
		"too many columns":   line + ",x\n",
		"too few columns":    strings.TrimSuffix(line, ",e1") + "\n",
		"only blank lines":   "\n\n",
		"space in event id":  strings.Replace(line, ",e1", ", e1", 1),
		"bad job id, line 2": line + "\n" + "x" + line[1:] + "\n",
		"bad sleep":          strings.Replace(line, ",100,", ",-1,", 1),
	} {
		got, gotErr := DecodeCSV([]byte(data))
		r := csv.NewReader(strings.NewReader(data))
		r.FieldsPerRecord = len(CSVColumns)
		recs, err := r.ReadAll()
		var want []EventLine
		if err == nil {
			want, err = appendLines(nil, recs)
		}
		if (gotErr == nil) != (err == nil) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: DecodeCSV = %v, %v; encoding/csv = %v, %v", name, got, gotErr, want, err)
		}
	}
}

// csvByEncodingCSV is EncodeCSV as encoding/csv writes it (the reference).
func csvByEncodingCSV(lines ...EventLine) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, l := range lines {
		ts := l.TS.UTC()
		_ = w.Write([]string{l.JobID.String(), string(l.Event), ts.Format(csvTime),
			strconv.FormatInt(ts.UnixMilli(), 10), strconv.FormatInt(l.Sleep, 10),
			strconv.FormatInt(l.DataSize, 10), l.EventID})
	}
	w.Flush()
	return b.Bytes()
}

// EncodeCSV reuses its writers: it must write exactly what a fresh
// encoding/csv writer writes, quoting included, call after call.
func TestEncodeCSVIsEncodingCSV(t *testing.T) {
	for _, id := range []string{"e1", "", "e,1", `e"1`, "e\n1", "e\r1", `\.`, `\.x`, " e1", "\te1", "\u00a0e1", "e 1", "é1", "\xff", "e1 "} {
		for _, ev := range []Status{StatusCreate, "", " x", "a,b"} {
			l := EventLine{JobID: uuid.New(), Event: ev, TS: time.UnixMilli(1795455178628).In(time.FixedZone("x", 3600)), Sleep: -5, DataSize: 1 << 40, EventID: id}
			if got, want := EncodeCSV(l, l), csvByEncodingCSV(l, l); !bytes.Equal(got, want) {
				t.Errorf("event %q, id %q: EncodeCSV = %q, encoding/csv = %q", ev, id, got, want)
			}
		}
	}
}

func FuzzEncodeCSV(f *testing.F) {
	f.Add("create", "e1", int64(1795455178628), int64(100), int64(5))
	f.Add(" x", `\.`, int64(-1), int64(0), int64(-9))
	f.Fuzz(func(t *testing.T, ev, id string, ms, sleep, size int64) {
		l := EventLine{JobID: uuid.New(), Event: Status(ev), TS: time.UnixMilli(ms), Sleep: sleep, DataSize: size, EventID: id}
		if got, want := EncodeCSV(l), csvByEncodingCSV(l); !bytes.Equal(got, want) {
			t.Errorf("EncodeCSV = %q, encoding/csv = %q", got, want)
		}
	})
}

func BenchmarkEncodeCSV(b *testing.B) {
	l := EventLine{JobID: uuid.New(), Event: StatusFinish, TS: time.Now(), Sleep: 100, DataSize: 1024, EventID: uuid.NewString()}
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeCSV(l)
	}
}

// BenchmarkDecodeCSV: one line, as chsink decodes each event, read by
// AppendCSVLines (its plain-CSV path) and by encoding/csv, whose reader
// allocates a 4 KB buffer per event; the difference is why the plain path
// is kept.
func BenchmarkDecodeCSV(b *testing.B) {
	l := EventLine{JobID: uuid.New(), Event: StatusFinish, TS: time.Now(), Sleep: 100, DataSize: 1024, EventID: uuid.NewString()}
	data := EncodeCSV(l)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := AppendCSVLines(nil, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-csv", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := csv.NewReader(bytes.NewReader(data))
			r.FieldsPerRecord = len(CSVColumns)
			recs, err := r.ReadAll()
			if err == nil {
				_, err = appendLines(nil, recs)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// AppendCSVLines adds to what dst holds, and leaves it as it was when a
// line is bad (chsink decodes a whole batch into one slice this way).
func TestAppendCSVLinesAppends(t *testing.T) {
	a := EventLine{JobID: uuid.New(), Event: StatusCreate, TS: time.UnixMilli(1795455178628).UTC(), Sleep: 1, DataSize: 2, EventID: "a"}
	b := a
	b.Event, b.EventID = StatusFinish, "b"
	dst, err := AppendCSVLines(nil, EncodeCSV(a))
	if err != nil {
		t.Fatal(err)
	}
	dst, err = AppendCSVLines(dst, EncodeCSV(b))
	if err != nil || len(dst) != 2 || dst[0] != a || dst[1] != b {
		t.Fatalf("got %v, %v; want [%v %v]", dst, err, a, b)
	}
	bad := append(EncodeCSV(a), "not,a,line,of,the,right,kind\n"...)
	if got, err := AppendCSVLines(dst, bad); err == nil || len(got) != 2 {
		t.Fatalf("a bad second line: got %d lines, err %v; want the 2 there were and an error", len(got), err)
	}
}
