package cebatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// csvBatch is a CloudEvents batch of n events as the engine sends chsink.
func csvBatch(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"%d-ev","source":"/apis/v1/namespaces/jobflow/kafkasinks/clickhouse-sink","type":"dev.jobflow.job.csv","time":"2026-11-23T17:32:58.123Z","datacontenttype":"text/csv","partitionkey":"1d1e3b0c-5b3e-4c55-9a57-%012d","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","data":"1d1e3b0c-5b3e-4c55-9a57-%012d,create,1763919178123,100,1024,%d-ev\n"}`, i, i, i, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// BenchmarkReadEvents: decoding a batch of 1000 CSV events (make bench).
func BenchmarkReadEvents(b *testing.B) {
	body := csvBatch(1000)
	b.Run("decoder", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
			if _, err := Read(r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
	})
	b.Run("sdk", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var events []event.Event
			if err := json.Unmarshal(body, &events); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
	})
}
