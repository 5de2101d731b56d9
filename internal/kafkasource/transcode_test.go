package kafkasource

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

func consumerMessage(t testing.TB, pm *sarama.ProducerMessage) *sarama.ConsumerMessage {
	t.Helper()
	m := &sarama.ConsumerMessage{Topic: "t", Partition: 3, Offset: 1234, Timestamp: time.UnixMilli(1795455178628)}
	if pm.Value != nil {
		m.Value, _ = pm.Value.Encode()
	}
	for _, h := range pm.Headers {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return m
}

func ceRecord(t testing.TB, e event.Event, structured bool) *sarama.ConsumerMessage {
	t.Helper()
	ctx := binding.WithForceBinary(context.Background())
	if structured {
		ctx = binding.WithForceStructured(context.Background())
	}
	pm := &sarama.ProducerMessage{Topic: "t"}
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&e), pm); err != nil {
		t.Fatal(err)
	}
	return consumerMessage(t, pm)
}

func header(k, v string) sarama.RecordHeader {
	return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)}
}

// The fast path's JSON must decode to the event the slow path sends
// (ToEvent, then the SDK's writer): the sink cannot tell them apart.
func TestAppendStructuredMatchesToEventAndTheSDKWriter(t *testing.T) {
	full := event.New()
	full.SetID("id-1")
	full.SetSource("/jobflow/converter")
	full.SetType("dev.jobflow.job.row")
	full.SetSubject("job-7")
	full.SetTime(time.Date(2026, 11, 23, 17, 32, 58, 123456789, time.UTC))
	full.SetDataSchema("https://jobflow.dev/schema")
	full.SetExtension("partitionkey", "k\"ey\\\n\u0001é")
	_ = full.SetData(event.ApplicationJSON, []byte(`{"schema":{"type":"struct"},"payload":{"id":"x","n":[1,2]}}`))
	csv := event.New()
	csv.SetID("id-2")
	csv.SetSource("/s")
	csv.SetType("dev.jobflow.job.csv")
	_ = csv.SetData("text/csv", []byte("a,\"b\",c\nd\te,ü,\u0002\n"))
	noData := event.New()
	noData.SetID("id-3")
	noData.SetSource("/s")
	noData.SetType("t")

	cases := map[string]struct {
		m    *sarama.ConsumerMessage
		fast bool
	}{
		"binary, JSON data":       {ceRecord(t, full, false), true},
		"binary, CSV data":        {ceRecord(t, csv, false), true},
		"binary, no data":         {ceRecord(t, noData, false), true},
		"structured":              {ceRecord(t, full, true), true},
		"binary, no content-type": {consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`{"a":1}`), Headers: []sarama.RecordHeader{header("ce_specversion", "1.0"), header("ce_id", "x"), header("ce_source", "/s"), header("ce_type", "t")}}), true},
		"upper-case headers":      {consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`{}`), Headers: []sarama.RecordHeader{header("CE_SPECVERSION", "1.0"), header("Ce_Id", "x"), header("ce_source", "/s"), header("ce_type", "t"), header("Content-Type", "application/json")}}), true},
		"not a CloudEvent":        {consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`plain`), Headers: []sarama.RecordHeader{header("x-trace", "1")}}), false},
		"spec version 0.3":        {consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`{}`), Headers: []sarama.RecordHeader{header("ce_specversion", "0.3"), header("ce_id", "x"), header("ce_source", "/s"), header("ce_type", "t")}}), false},
		"odd extension name":      {consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`{}`), Headers: []sarama.RecordHeader{header("ce_specversion", "1.0"), header("ce_id", "x"), header("ce_source", "/s"), header("ce_type", "t"), header("ce_my-ext", "v")}}), false},
		"own kafkaoffset header":  {consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`{}`), Headers: []sarama.RecordHeader{header("ce_specversion", "1.0"), header("ce_id", "x"), header("ce_source", "/s"), header("ce_type", "t"), header("ce_kafkaoffset", "mine")}}), true},
		"two content types":       {consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`{}`), Headers: []sarama.RecordHeader{header("ce_specversion", "1.0"), header("ce_id", "x"), header("ce_source", "/s"), header("ce_type", "t"), header("ce_datacontenttype", "text/plain"), header("content-type", "application/json")}}), false},
	}
	for name, c := range cases {
		got, ok := appendStructured(nil, c.m)
		if ok != c.fast {
			t.Errorf("%s: fast path %v, want %v", name, ok, c.fast)
			continue
		}
		if !ok {
			continue
		}
		slow, err := ToEvent(context.Background(), c.m, "ns", "src")
		if err != nil {
			t.Fatalf("%s: ToEvent: %v", name, err)
		}
		var viaSDK bytes.Buffer
		if err := event.WriteJson(slow, &viaSDK); err != nil {
			t.Fatal(err)
		}
		var a, b event.Event
		if err := a.UnmarshalJSON(got); err != nil {
			t.Fatalf("%s: the fast path wrote %s: %v", name, got, err)
		}
		if err := b.UnmarshalJSON(viaSDK.Bytes()); err != nil {
			t.Fatal(err)
		}
		if err := sameEvent(a, b); err != nil {
			t.Errorf("%s: %v\nfast: %s\nSDK:  %s", name, err, got, viaSDK.Bytes())
		}
	}
}

func sameEvent(a, b event.Event) error {
	switch {
	case a.SpecVersion() != b.SpecVersion() || a.ID() != b.ID() || a.Source() != b.Source() || a.Type() != b.Type():
		return fmt.Errorf("core attributes differ")
	case a.Subject() != b.Subject() || a.DataSchema() != b.DataSchema() || a.DataContentType() != b.DataContentType():
		return fmt.Errorf("optional attributes differ")
	case !a.Time().Equal(b.Time()):
		return fmt.Errorf("time %s != %s", a.Time(), b.Time())
	case !reflect.DeepEqual(a.Extensions(), b.Extensions()):
		return fmt.Errorf("extensions %v != %v", a.Extensions(), b.Extensions())
	case !bytes.Equal(a.Data(), b.Data()):
		return fmt.Errorf("data %q != %q", a.Data(), b.Data())
	}
	return nil
}

// A CloudEvent record passes through unchanged, as on Knative: none of the
// kafkaoffset/kafkapartition/kafkatopic extensions the SDK's reader adds.
func TestToEventPassesACloudEventThroughUnchanged(t *testing.T) {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/s")
	e.SetType("t")
	e.SetExtension("partitionkey", "k")
	_ = e.SetData(event.ApplicationJSON, []byte(`{"a":1}`))
	for _, structured := range []bool{false, true} {
		got, err := ToEvent(context.Background(), ceRecord(t, e, structured), "ns", "src")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Extensions(), map[string]any{"partitionkey": "k"}) {
			t.Errorf("structured %v: extensions %v, want only partitionkey", structured, got.Extensions())
		}
	}
	own := consumerMessage(t, &sarama.ProducerMessage{Value: sarama.StringEncoder(`{}`), Headers: []sarama.RecordHeader{
		header("ce_specversion", "1.0"), header("ce_id", "x"), header("ce_source", "/s"), header("ce_type", "t"), header("ce_kafkaoffset", "mine")}})
	got, err := ToEvent(context.Background(), own, "ns", "src")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Extensions(), map[string]any{"kafkaoffset": "mine"}) {
		t.Errorf("a record's own kafkaoffset: extensions %v", got.Extensions())
	}
}

// BenchmarkEncodeBatch is the engine's side of a sink's batch: 1000 CSV
// events as the KafkaSink ingress writes them (binary mode) turned into one
// CloudEvents JSON batch (go test -run '^$' -bench EncodeBatch -benchmem
// ./internal/kafkasource).
func BenchmarkEncodeBatch(b *testing.B) {
	msgs := make([]*sarama.ConsumerMessage, 1000)
	for i := range msgs {
		e := event.New()
		e.SetID(fmt.Sprintf("3f2c9a1e-5b7d-4c8e-9f01-%012d", i))
		e.SetSource("/jobflow/bench")
		e.SetType("dev.jobflow.job.csv")
		e.SetSubject(fmt.Sprintf("9b1de2f4-0c3a-4e5f-8a7b-%012d", i))
		e.SetTime(time.Date(2026, 11, 24, 5, 0, 0, i*1000, time.UTC))
		e.SetExtension("partitionkey", e.Subject())
		line := fmt.Sprintf("%s,finish,2026-11-24 05:00:00,1795496400123,100,1024,%s\n", e.Subject(), e.ID())
		if err := e.SetData("text/csv", []byte(line)); err != nil {
			b.Fatal(err)
		}
		msgs[i] = ceRecord(b, e, false)
	}
	ctx := context.Background()
	var size int
	for b.Loop() {
		body, in, _ := encodeBatch(ctx, msgs, "b", "bench")
		if len(in) != len(msgs) {
			b.Fatalf("%d of %d records in the batch", len(in), len(msgs))
		}
		size = len(body)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
	b.ReportMetric(float64(size)/float64(len(msgs)), "B/event")
}

// appendJSONString writes what encoding/json reads back as the same
// string, and refuses exactly what is not UTF-8.
func FuzzAppendJSONString(f *testing.F) {
	for _, seed := range []string{"", "plain", "a,\"b\",c\nd\te\\f", "\x00\x1f\x7f", "ü€😀", "\xff", "abcdefg\"hijklmnop\x01qrstuvwxyz0123456789", "0123456789abcdef\xc3"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		got, ok := appendJSONString([]byte("x"), s)
		if ok != utf8.Valid(s) {
			t.Fatalf("%q: ok %v, but utf8.Valid says %v", s, ok, utf8.Valid(s))
		}
		if !ok {
			return
		}
		if got[0] != 'x' {
			t.Fatalf("%q: what was in b was overwritten: %q", s, got)
		}
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil || back != string(s) {
			t.Fatalf("%q: wrote %s, which reads back as %q (%v)", s, got[1:], back, err)
		}
	})
}
