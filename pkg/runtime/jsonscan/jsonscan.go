// Package jsonscan finds the boundaries of JSON values without parsing
// them: the elements of an array, the value of an object's member. It
// tracks only strings and nesting, so it is fast and allocates nothing;
// the values it returns must still be decoded (and so checked) by a real
// JSON decoder. The sinks use it on their hot paths, where skipping large
// values with jsoniter (which allocates every key it passes) or scanning
// them with encoding/json cost most of their CPU.
package jsonscan

import (
	"bytes"
	"errors"
	"fmt"
)

// Space skips JSON whitespace from i.
func Space(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// ValueEnd returns the end of the value starting at b[i] (after spaces):
// a string, an object or array with balanced brackets, or a literal/number
// running to the next ',', '}', ']' or space.
func ValueEnd(b []byte, i int) (start, end int, err error) {
	i = Space(b, i)
	if i >= len(b) {
		return 0, 0, errors.New("unexpected end of JSON")
	}
	start = i
	switch b[i] {
	case '"':
		end, err = stringEnd(b, i)
		return start, end, err
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i, err = stringEnd(b, i); err != nil {
					return 0, 0, err
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return start, i + 1, nil
				}
			}
		}
		return 0, 0, errors.New("unbalanced brackets")
	case '}', ']', ',', ':':
		return 0, 0, fmt.Errorf("unexpected %q", b[i])
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return start, i, nil
}

// stringEnd returns the index after the string starting at b[i] == '"':
// the next quote not escaped by an odd run of backslashes.
func stringEnd(b []byte, i int) (int, error) {
	for i++; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, errors.New("unterminated string")
		}
		q, n := i+j, 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		i = q + 1
	}
}

// Split returns the elements of the JSON array b.
func Split(b []byte) ([][]byte, error) {
	spans, err := SplitSpans(b)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(spans))
	for i, sp := range spans {
		out[i] = b[sp.Start:sp.End]
	}
	return out, nil
}

// Span is where a value lies in its document: b[Start:End].
type Span struct{ Start, End int }

// SplitSpans returns where the elements of the JSON array b lie.
func SplitSpans(b []byte) ([]Span, error) {
	i := Space(b, 0)
	if i == len(b) || b[i] != '[' {
		return nil, errors.New("want a JSON array")
	}
	var out []Span
	if i = Space(b, i+1); i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			start, end, err := ValueEnd(b, i)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", len(out), err)
			}
			out = append(out, Span{start, end})
			if i = Space(b, end); i >= len(b) {
				return nil, errors.New("unterminated array")
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				return nil, fmt.Errorf("element %d: unexpected %q after it", len(out)-1, b[i])
			}
			i++
		}
	}
	if Space(b, i) != len(b) {
		return nil, errors.New("data after the array")
	}
	return out, nil
}

// Member returns the bounds of the value of the top-level member key of
// the JSON object b (the first one, when there are several). A key
// written with escapes is not recognised; found is then false, and the
// caller decodes b the slow way.
func Member(b []byte, key string) (start, end int, found bool, err error) {
	i := Space(b, 0)
	if i == len(b) || b[i] != '{' {
		return 0, 0, false, errors.New("want a JSON object")
	}
	if i = Space(b, i+1); i < len(b) && b[i] == '}' {
		return 0, 0, false, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, false, errors.New("want a member name")
		}
		kEnd, err := stringEnd(b, i)
		if err != nil {
			return 0, 0, false, err
		}
		name := b[i+1 : kEnd-1]
		if i = Space(b, kEnd); i >= len(b) || b[i] != ':' {
			return 0, 0, false, errors.New("want ':' after a member name")
		}
		vs, ve, err := ValueEnd(b, i+1)
		if err != nil {
			return 0, 0, false, err
		}
		if string(name) == key {
			return vs, ve, true, nil
		}
		if i = Space(b, ve); i >= len(b) {
			return 0, 0, false, errors.New("unterminated object")
		}
		if b[i] == '}' {
			return 0, 0, false, nil
		}
		if b[i] != ',' {
			return 0, 0, false, fmt.Errorf("unexpected %q after member %q", b[i], name)
		}
		i = Space(b, i+1)
	}
}
