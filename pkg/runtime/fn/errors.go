package fn

import (
	"errors"
	"fmt"
	"net/http"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// StatusError carries the HTTP status a handler wants its caller to see.
// Knative's delivery retries 5xx, 404, 408, 409 and 429 and treats any other
// 4xx as permanent, so the status decides whether an event is redelivered.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// As lets a CloudEvents SDK server answer with Code: func's wrapper on
// Knative takes the status from a *cehttp.Result in the returned error, so
// without this an invalid event would get a 500 there (and be retried)
// while the local runtime answers 400.
func (e *StatusError) As(target any) bool {
	if r, ok := target.(**cehttp.Result); ok {
		*r = cehttp.NewResult(e.Code, "%s", e.Err.Error()).(*cehttp.Result)
		return true
	}
	return false
}

// Invalid marks err as a problem with the input: 400, never retried.
func Invalid(err error) error { return &StatusError{Code: http.StatusBadRequest, Err: err} }

// Invalidf is Invalid with a formatted message.
func Invalidf(format string, args ...any) error { return Invalid(fmt.Errorf(format, args...)) }

// Unavailable marks err as transient (a dependency is down): 503, retried.
func Unavailable(err error) error { return &StatusError{Code: http.StatusServiceUnavailable, Err: err} }

// WithStatus attaches an explicit HTTP status to err.
func WithStatus(code int, err error) error { return &StatusError{Code: code, Err: err} }

// StatusOf returns the HTTP status for err: the one attached with the
// helpers above, else 500 (retried by the delivery).
func StatusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return http.StatusInternalServerError
}
