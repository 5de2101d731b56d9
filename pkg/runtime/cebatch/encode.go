package cebatch

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
)

// AppendEvent appends e as one element of a batch: its structured JSON
// form, which the SDK's decoder (and this package's) reads back into the
// same event. It writes the common form itself (a CloudEvents 1.0 event
// whose extensions are strings) and asks the SDK for anything else;
// json.Marshal of an event took a fifth of an emitting function's CPU,
// half of it re-scanning and compacting what the SDK had written.
//
// Text data (a non-JSON content type whose data is UTF-8) is written as a
// JSON string, not base64: the SDK marks []byte data as base64, which
// made the reader of the batch leave its fast path for every such event.
// The decoded event has the same data (DataBase64 aside, which a binary
// request does not carry either). ok is false when e cannot be written
// (JSON data that is not valid JSON, or what the SDK refuses): the caller
// sends such an event alone, to get its own error.
func AppendEvent(b []byte, e *event.Event) ([]byte, bool) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok || !stringExtensions(ec) {
		return appendViaSDK(b, e)
	}
	w := writer{b: b, ok: true}
	w.raw(`{"specversion":"1.0","id":`)
	w.str(ec.ID)
	w.raw(`,"source":`)
	w.str(ec.Source.String())
	w.raw(`,"type":`)
	w.str(ec.Type)
	if ec.Subject != nil {
		w.raw(`,"subject":`)
		w.str(*ec.Subject)
	}
	if ec.DataContentType != nil {
		w.raw(`,"datacontenttype":`)
		w.str(*ec.DataContentType)
	}
	if ec.DataSchema != nil {
		w.raw(`,"dataschema":`)
		w.str(ec.DataSchema.String())
	}
	if ec.Time != nil {
		w.raw(`,"time":"`)
		w.b = ec.Time.Time.UTC().AppendFormat(w.b, time.RFC3339Nano)
		w.raw(`"`)
	}
	w.data(e)
	for _, k := range sortedKeys(ec.Extensions) {
		w.raw(",")
		w.str(k)
		w.raw(":")
		w.str(ec.Extensions[k].(string))
	}
	if !w.ok {
		// A string that is not UTF-8, or JSON data that is not JSON: the
		// SDK's way decides (and json.Valid refuses what it makes of it).
		return appendViaSDK(b, e)
	}
	return append(w.b, '}'), true
}

// writer appends JSON to b; ok turns false, for good, when something
// cannot be written as the SDK would.
type writer struct {
	b  []byte
	ok bool
}

func (w *writer) raw(s string) { w.b = append(w.b, s...) }

// str appends s as a JSON string; s must be UTF-8.
func (w *writer) str(s string) {
	if !utf8.ValidString(s) {
		w.ok = false
		return
	}
	w.b = appendString(w.b, s)
}

// data appends e's data member, if it has data: JSON data (by the SDK's
// rule: no content type or a JSON one) as it is, whether or not the SDK
// marked it base64, other data that is UTF-8 as a string, the rest in
// base64. The reader gets back the same bytes each way.
func (w *writer) data(e *event.Event) {
	d := e.DataEncoded
	switch {
	case d == nil:
	case jsonMedia(e.DataContentType()):
		if !json.Valid(d) {
			if e.DataBase64 {
				w.b = appendBase64(w.b, d)
				return
			}
			w.ok = false // the SDK would write it as it is: not JSON
			return
		}
		w.raw(`,"data":`)
		w.b = append(w.b, d...)
	case utf8.Valid(d):
		w.raw(`,"data":`)
		w.b = appendString(w.b, string(d))
	default:
		w.b = appendBase64(w.b, d)
	}
}

// appendString appends s (UTF-8) as a JSON string; runs of bytes that need
// no escaping are copied at once.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendBase64 appends d as the data_base64 member.
func appendBase64(b, d []byte) []byte {
	b = append(b, `,"data_base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, d)
	return append(b, '"')
}

// appendViaSDK appends what the SDK's writer makes of e (not json.Marshal,
// which would scan and copy it again to compact it).
func appendViaSDK(b []byte, e *event.Event) ([]byte, bool) {
	js, err := e.MarshalJSON()
	if err != nil || !json.Valid(js) {
		return b, false
	}
	return append(b, js...), true
}

// stringExtensions reports whether every extension of ec is a string.
func stringExtensions(ec *event.EventContextV1) bool {
	for _, v := range ec.Extensions {
		if _, ok := v.(string); !ok {
			return false
		}
	}
	return true
}

// sortedKeys are m's keys in order (the SDK's order; a handful at most).
func sortedKeys(m map[string]any) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		i := len(keys)
		keys = append(keys, k)
		for ; i > 0 && keys[i-1] > k; i-- {
			keys[i] = keys[i-1]
		}
		keys[i] = k
	}
	return keys
}

// jsonMedia is the SDK's rule (its isJSON) for data written as JSON.
func jsonMedia(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON, "":
		return true
	}
	return false
}
