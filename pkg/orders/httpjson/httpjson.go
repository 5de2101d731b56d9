// Package httpjson reads the JSON bodies of the orders domain's
// user-facing calls strictly: valid UTF-8, one object, no unknown field;
// any problem is a 400 with the reason (a body over MAX_BODY_BYTES: 413).
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Decode reads r's body into v.
func Decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err // WriteError answers 413
		}
		return fn.Invalidf("request body: %v", err)
	}
	return DecodeBytes(body, v)
}

// DecodeBytes reads body into v with the same rules.
func DecodeBytes(body []byte, v any) error {
	if !utf8.Valid(body) {
		return fn.Invalidf("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fn.Invalidf("request body: %v", err)
	}
	if dec.More() {
		return fn.Invalidf("request body: more than one JSON value")
	}
	return nil
}
