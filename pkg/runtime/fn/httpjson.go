package fn

import (
	"encoding/json"
	"io"
	"net/http"
)

// errorBody is the JSON body of every error answer: a reason a person can act on.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes err as JSON {"error": reason, "status": code} with the
// status StatusOf(err); a body over the size limit becomes 413.
func WriteError(w http.ResponseWriter, err error) {
	code := StatusOf(err)
	if tooBig(err) {
		code = http.StatusRequestEntityTooLarge
	}
	WriteJSON(w, code, errorBody{Error: err.Error(), Status: code})
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
