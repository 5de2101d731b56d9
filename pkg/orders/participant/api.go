package participant

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// The helpers of the participants' APIs.

// DecodeJSON reads r's body as one JSON object strictly: invalid UTF-8,
// unknown fields and trailing data are 400s (an oversize body is a 413).
func DecodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
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

// Caller is who called (the middleware let only valid tokens through).
func Caller(r *http.Request) auth.Claims {
	c, _ := auth.FromContext(r.Context())
	return c
}

// ErrAdminOnly answers a non-admin's call to an admin endpoint.
var ErrAdminOnly = fn.WithStatus(http.StatusForbidden, errors.New("admins only"))

// AdminOnly lets only admins through to next (403 otherwise).
func AdminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !Caller(r).Admin {
			fn.WriteError(w, ErrAdminOnly)
			return
		}
		next(w, r)
	}
}

// PathID reads the positive integer path value name.
func PathID(r *http.Request, name string) (int64, error) {
	raw := r.PathValue(name)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, fn.Invalidf("%s %q is not a positive integer", name, raw)
	}
	return id, nil
}

// NotFound is the answer for an unknown endpoint, listing the known ones.
func NotFound(endpoints string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, errors.New("no such endpoint: "+endpoints)))
	}
}

// StoreError maps a database failure to 503 (retry), keeping 4xx as they are.
func StoreError(err error) error {
	if fn.StatusOf(err) < 500 {
		return err
	}
	return fn.Unavailable(err)
}
