package kafkasource

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
)

func consumerMessage(t *testing.T, pm *sarama.ProducerMessage) *sarama.ConsumerMessage {
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

func ceRecord(t *testing.T, e event.Event, structured bool) *sarama.ConsumerMessage {
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
