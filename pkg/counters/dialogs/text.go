package dialogs

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// validText reports whether a JSON document holds only valid Unicode text:
// its bytes are valid UTF-8 and every \u escape of a UTF-16 surrogate is one
// half of a pair. encoding/json replaces both kinds of fault with U+FFFD, so
// a client's mistake would otherwise be stored as a different string.
func validText(doc []byte) error {
	if !utf8.Valid(doc) {
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(doc); i++ {
		if doc[i] != '\\' || i+1 >= len(doc) {
			continue
		}
		if doc[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(doc, i+2)
		if !ok {
			continue // malformed: the decoder reports it
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			low, ok := hex4(doc, i+8)
			if !ok || i+7 >= len(doc) || doc[i+6] != '\\' || doc[i+7] != 'u' || low < 0xDC00 || low > 0xDFFF {
				return fmt.Errorf("unpaired UTF-16 surrogate \\u%04X", r)
			}
			i += 11
		case utf16.IsSurrogate(r):
			return fmt.Errorf("unpaired UTF-16 surrogate \\u%04X", r)
		default:
			i += 5
		}
	}
	return nil
}

// hex4 parses the four hex digits at doc[at:].
func hex4(doc []byte, at int) (rune, bool) {
	if at+4 > len(doc) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(doc[at:at+4]), 16, 16)
	return rune(v), err == nil
}
