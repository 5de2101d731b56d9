package kafkasource

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/IBM/sarama"
)

// appendStructured appends the CloudEvent that record m carries, in
// structured JSON (one element of a batch), without building an
// event.Event: the fast path of batched delivery. It handles the two forms
// the KafkaSinks write: binary mode with CloudEvents 1.0 headers (ce_*,
// content-type), transcoded to the JSON that the SDK's event writer makes
// of ToEvent's event, and structured mode, whose value is the element. ok is false for anything else (a record to wrap, another
// spec version): ToEvent and the SDK's writer handle those.
//
// Nothing is validated here: an element the sink cannot read makes it
// refuse the batch, and every event of a refused batch is delivered on its
// own through ToEvent, which wraps what is not a valid CloudEvent. The
// outcome per record is therefore the same as without batches;
// transcode_test.go checks that the JSON matches the SDK's.
func appendStructured(b []byte, m *sarama.ConsumerMessage) ([]byte, bool) {
	var contentType, specVersion []byte
	hasCE := false
	for _, h := range m.Headers {
		if h == nil {
			return b, false
		}
		k := h.Key
		switch {
		case bytes.EqualFold(k, []byte("content-type")):
			contentType = h.Value
		case bytes.EqualFold(k, []byte("ce_specversion")):
			specVersion = h.Value
		case len(k) > 3 && bytes.EqualFold(k[:3], []byte("ce_")):
			hasCE = true
		}
	}
	if ct, _, _ := bytes.Cut(contentType, []byte(";")); bytes.EqualFold(bytes.TrimSpace(ct), []byte("application/cloudevents+json")) {
		if specVersion != nil || len(m.Value) == 0 || m.Value[0] != '{' {
			return b, false
		}
		return append(b, m.Value...), true
	}
	if string(specVersion) != "1.0" || !hasCE {
		return b, false
	}
	b = append(b, `{"specversion":"1.0"`...)
	var dct []byte
	var seenBuf [16][]byte // names written so far (allocation-free for the usual few headers)
	seen := seenBuf[:0]
	has := func(name []byte) bool {
		for _, n := range seen {
			if string(n) == string(name) {
				return true
			}
		}
		return false
	}
	for _, h := range m.Headers {
		k := lowerASCII(h.Key)
		var name []byte
		switch {
		case string(k) == "content-type":
			name = []byte("datacontenttype")
		case len(k) > 3 && string(k[:3]) == "ce_" && string(k[3:]) != "specversion":
			name = k[3:]
		default:
			continue
		}
		if string(name) == "datacontenttype" {
			dct = h.Value
		}
		if has(name) || !validName(name) || !utf8.Valid(h.Value) {
			return b, false // duplicates, odd names or bytes: the SDK's way decides
		}
		seen = append(seen, name)
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = appendJSONString(b, h.Value)
	}
	if m.Value != nil {
		b = append(b, `,"data":`...)
		if isJSONMedia(string(dct)) {
			b = append(b, m.Value...)
		} else {
			if !utf8.Valid(m.Value) {
				return b, false
			}
			b = appendJSONString(b, m.Value)
		}
	}
	return append(b, '}'), true
}

// isJSONMedia is the SDK's rule for writing data as JSON: no content type,
// or a JSON one.
func isJSONMedia(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "", "application/json", "text/json", "application/cloudevents+json", "application/cloudevents-batch+json":
		return true
	}
	return false
}

// lowerASCII returns k lower-cased, without copying when it already is.
func lowerASCII(k []byte) []byte {
	for i, c := range k {
		if c >= 'A' && c <= 'Z' {
			l := make([]byte, len(k))
			copy(l, k[:i])
			for j := i; j < len(k); j++ {
				if c := k[j]; c >= 'A' && c <= 'Z' {
					l[j] = c + 'a' - 'A'
				} else {
					l[j] = c
				}
			}
			return l
		}
	}
	return k
}

// validName: attribute and extension names are lower-case letters and digits.
func validName(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// appendJSONString appends s as a JSON string (s is valid UTF-8).
func appendJSONString(b, s []byte) []byte {
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
