package cebatch

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// convertedEvents are what the converter emits for a job: a row (JSON)
// and a CSV line (text set as bytes, which the SDK marks base64).
func convertedEvents() []event.Event {
	row := event.New()
	row.SetID("0d9b5f0e-2a53-5bd6-9a6e-3c1c0a4f8b11")
	row.SetSource("/jobflow/converter")
	row.SetType("dev.jobflow.job.row")
	row.SetSubject("6f1c2a9e-8f0b-4b9e-9d1e-2f4b6a7c8d90")
	row.SetTime(time.Now())
	row.SetExtension("partitionkey", "6f1c2a9e-8f0b-4b9e-9d1e-2f4b6a7c8d90")
	row.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	_ = row.SetData(event.ApplicationJSON, map[string]any{"schema": map[string]any{"type": "struct"},
		"payload": map[string]any{"id": "6f1c2a9e-8f0b-4b9e-9d1e-2f4b6a7c8d90", "status": "finish", "sleep": 0, "data_size": 64, "checksum": "9a0364b9e99bb480dd25e1f0284c8555"}})
	csv := row.Clone()
	csv.SetType("dev.jobflow.job.csv")
	_ = csv.SetData("text/csv", []byte("6f1c2a9e-8f0b-4b9e-9d1e-2f4b6a7c8d90,finish,2026-12-02 18:00:00.000,0,64,9a0364b9e99bb480dd25e1f0284c8555\n"))
	return []event.Event{row, csv}
}

// The emitters' side of a batch: an event written by json.Marshal (what
// they did) against AppendEvent, and the sink's reading of each.
func BenchmarkAppendEvent(b *testing.B) {
	evs := convertedEvents()
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := json.Marshal(&evs[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendEvent", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; b.Loop(); i++ {
			buf, _ = AppendEvent(buf[:0], &evs[i%2])
		}
	})
	for name, write := range map[string]func(*event.Event) []byte{
		"read-json.Marshal": func(e *event.Event) []byte { js, _ := json.Marshal(e); return js },
		"read-AppendEvent":  func(e *event.Event) []byte { js, _ := AppendEvent(nil, e); return js },
	} {
		body := []byte{'['}
		for i := range 1000 {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, write(&evs[i%2])...)
		}
		body = append(body, ']')
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeAll(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000/1000, "µs/event")
		})
	}
}
