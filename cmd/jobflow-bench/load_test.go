package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/IBM/sarama"
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
		if got.Topic != want.Topic || !bytes.Equal(bytesOf(got.Key), bytesOf(want.Key)) ||
			!bytes.Equal(bytesOf(got.Value), bytesOf(want.Value)) || len(got.Headers) != len(want.Headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, got, want)
		}
		for j := range want.Headers {
			if !bytes.Equal(got.Headers[j].Key, want.Headers[j].Key) || !bytes.Equal(got.Headers[j].Value, want.Headers[j].Value) {
				t.Fatalf("record %d header %d: got %q=%q, want %q=%q", i, j, got.Headers[j].Key, got.Headers[j].Value,
					want.Headers[j].Key, want.Headers[j].Value)
			}
		}
	}
}
