package fn

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// ErrorBody is the JSON body of every error answer: a reason a person can act on.
type ErrorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes err as an ErrorBody with the status StatusOf(err); a
// body over the size limit becomes 413.
func WriteError(w http.ResponseWriter, err error) {
	code := StatusOf(err)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		code = http.StatusRequestEntityTooLarge
	}
	WriteJSON(w, code, ErrorBody{Error: err.Error(), Status: code})
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
