package cebatch

import (
	"bytes"

	"github.com/jobflow/jobflow/pkg/runtime/jsonscan"
)

// A scanner walks the members of one JSON object in the common form of a
// structured event: every step reports false for anything else, and the
// event then goes to the SDK's decoder.
type scanner struct {
	raw  []byte
	text string // string(raw)
	i    int
}

// open reads the object's '{'.
func (s *scanner) open() bool {
	s.i = jsonscan.Space(s.raw, 0)
	if s.i >= len(s.raw) || s.raw[s.i] != '{' {
		return false
	}
	s.i = jsonscan.Space(s.raw, s.i+1)
	return true
}

// name reads a member's name and its colon: "name": with the name plain
// lower-case letters, digits or '_'.
func (s *scanner) name() ([]byte, bool) {
	raw, i := s.raw, s.i
	if i >= len(raw) || raw[i] != '"' {
		return nil, false
	}
	j := i + 1
	for j < len(raw) && (raw[j] >= 'a' && raw[j] <= 'z' || raw[j] >= '0' && raw[j] <= '9' || raw[j] == '_') {
		j++
	}
	if j >= len(raw) || raw[j] != '"' || j == i+1 {
		return nil, false
	}
	if s.i = jsonscan.Space(raw, j+1); s.i >= len(raw) || raw[s.i] != ':' {
		return nil, false
	}
	s.i++
	return raw[i+1 : j], true
}

// data reads the data member's value: an object, an array or a string
// right after the colon (spaces before it, or a literal, which the SDK
// checks, are the SDK's business).
func (s *scanner) data() ([]byte, bool) {
	if s.i >= len(s.raw) || (s.raw[s.i] != '{' && s.raw[s.i] != '[' && s.raw[s.i] != '"') {
		return nil, false
	}
	start, end, err := jsonscan.ValueEnd(s.raw, s.i)
	if err != nil {
		return nil, false
	}
	s.i = end
	return s.raw[start:end], true
}

// plainString reads a string value right after the colon if it is
// printable ASCII without escapes (what attributes are in practice): its
// contents as bytes and as a substring of text.
func (s *scanner) plainString() ([]byte, string, bool) {
	raw, i := s.raw, s.i
	if i >= len(raw) || raw[i] != '"' {
		return nil, "", false
	}
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			s.i = j + 1
			return raw[i+1 : j], s.text[i+1 : j], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, "", false
		}
	}
	return nil, "", false
}

// next reads what follows a member: ',' (more is true) or the object's '}'.
func (s *scanner) next() (more, ok bool) {
	if s.i = jsonscan.Space(s.raw, s.i); s.i >= len(s.raw) {
		return false, false
	}
	switch s.raw[s.i] {
	case '}':
		s.i++
		return false, true
	case ',':
		s.i = jsonscan.Space(s.raw, s.i+1)
		return true, true
	}
	return false, false
}

// end reports whether nothing but spaces follows the object.
func (s *scanner) end() bool { return jsonscan.Space(s.raw, s.i) == len(s.raw) }

// unescape appends to out the JSON string q (with its quotes) decoded,
// when it is ASCII with at most the two-character escapes (\n, \", ...);
// ok is false for anything else (\u escapes, other bytes), which the SDK
// then decodes. With keep false it only checks q and appends nothing.
func unescape(out, q []byte, keep bool) (b []byte, ok bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return out, false
	}
	q = q[1 : len(q)-1]
	for len(q) > 0 {
		k := bytes.IndexByte(q, '\\')
		if k < 0 {
			k = len(q)
		}
		for _, c := range q[:k] {
			if c < 0x20 || c >= 0x80 || c == '"' {
				return nil, false
			}
		}
		if keep {
			out = append(out, q[:k]...)
		}
		if k == len(q) {
			break
		}
		c, ok := unescaped(q, k)
		if !ok {
			return nil, false
		}
		if keep {
			out = append(out, c)
		}
		q = q[k+2:]
	}
	return out, true
}

// unescaped is the byte the two-character escape at q[k] stands for.
func unescaped(q []byte, k int) (byte, bool) {
	if k+1 >= len(q) {
		return 0, false
	}
	switch q[k+1] {
	case '"', '\\', '/':
		return q[k+1], true
	case 'n':
		return '\n', true
	case 't':
		return '\t', true
	case 'r':
		return '\r', true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	}
	return 0, false
}
