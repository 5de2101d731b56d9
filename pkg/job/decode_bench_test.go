package job

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

func BenchmarkDecodeRow(b *testing.B) {
	fin := time.Now()
	data, _ := EncodeRow(Row{ID: uuid.New(), Status: StatusFinish, CreateDate: time.Now(), FinishDate: &fin, Sleep: 99, DataSize: 1024, Checksum: "abcdef0123456789"})
	b.Logf("row event data: %d bytes", len(data))
	b.Run("DecodeRow", func(b *testing.B) {
		for range b.N {
			if _, err := DecodeRow(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json payload only", func(b *testing.B) {
		for range b.N {
			var rec struct {
				Payload *rowPayload `json:"payload"`
			}
			if err := json.Unmarshal(data, &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
