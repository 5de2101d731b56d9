package kafkasource

import (
	"bytes"
	"slices"
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
	// One pass writes the binary-mode element while it reads what decides
	// the form; a structured record (its content type says so) then takes
	// its value instead. binary is false once something the binary form
	// cannot take was met (the SDK's way decides then).
	mark := len(b)
	b = append(b, `{"specversion":"1.0"`...)
	var contentType, specVersion, dct []byte
	hasCE, binary := false, true
	var seenBuf [16][]byte // names written so far (allocation-free for the usual few headers)
	seen := seenBuf[:0]
	for _, h := range m.Headers {
		if h == nil {
			return b[:mark], false
		}
		k := lowerASCII(h.Key)
		var name []byte
		switch {
		case string(k) == "content-type":
			contentType, dct, name = h.Value, h.Value, dataContentType
		case len(k) > 3 && string(k[:3]) == "ce_":
			if string(k[3:]) == "specversion" {
				specVersion = h.Value
				continue
			}
			hasCE, name = true, k[3:]
			if string(name) == "datacontenttype" {
				dct = h.Value
			}
		default:
			continue
		}
		if !binary {
			continue
		}
		if slices.ContainsFunc(seen, func(n []byte) bool { return string(n) == string(name) }) || !validName(name) {
			binary = false // duplicates or odd names: the SDK's way decides
			continue
		}
		seen = append(seen, name)
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b, binary = appendJSONString(b, h.Value) // false: not UTF-8
	}
	if ct, _, _ := bytes.Cut(contentType, []byte(";")); bytes.EqualFold(bytes.TrimSpace(ct), []byte("application/cloudevents+json")) {
		b = b[:mark]
		if specVersion != nil || len(m.Value) == 0 || m.Value[0] != '{' {
			return b, false
		}
		return append(b, m.Value...), true
	}
	if !binary || string(specVersion) != "1.0" || !hasCE {
		return b[:mark], false
	}
	if m.Value != nil {
		b = append(b, `,"data":`...)
		if isJSONMedia(string(dct)) {
			b = append(b, m.Value...)
		} else if b, binary = appendJSONString(b, m.Value); !binary {
			return b[:mark], false
		}
	}
	return append(b, '}'), true
}

// dataContentType is the attribute a content-type header becomes.
var dataContentType = []byte("datacontenttype")

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

// appendJSONString appends s as a JSON string; ok is false (b then holds
// part of it) when s is not valid UTF-8. Runs of bytes that need no
// escaping are copied at once.
func appendJSONString(b, s []byte) ([]byte, bool) {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return b, false
			}
			i += size
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
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}
