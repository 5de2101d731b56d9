package fn

import (
	"errors"
	"mime"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/runtime/cebatch"
)

// ReadEvent decodes a CloudEvent (binary or structured mode) from r: 415 when
// r is not a CloudEvent, 400 when it is an invalid one.
func ReadEvent(r *http.Request) (*event.Event, error) {
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer func() { _ = msg.Finish(nil) }()
	if msg.ReadEncoding() == binding.EncodingUnknown {
		return nil, WithStatus(http.StatusUnsupportedMediaType,
			errors.New("not a CloudEvent: send ce-* headers (binary mode) or Content-Type: application/cloudevents+json"))
	}
	e, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		if tooBig(err) {
			return nil, err
		}
		return nil, Invalidf("invalid CloudEvent: %v", err)
	}
	if err := e.Validate(); err != nil {
		return nil, Invalidf("invalid CloudEvent: %v", err)
	}
	return e, nil
}

// IsBatch reports whether a request with header h carries a CloudEvents batch.
func IsBatch(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == event.ApplicationCloudEventsBatchJSON
}

// ReadEvents decodes a CloudEvents batch (package cebatch): 400 naming the
// first invalid event.
func ReadEvents(r *http.Request) ([]event.Event, error) {
	events, err := cebatch.Read(r)
	if err != nil && !tooBig(err) {
		return nil, Invalid(err)
	}
	return events, err
}

// tooBig reports whether err is a body over the size limit (413).
func tooBig(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}

// EventOrAPI routes a function that is both a CloudEvents subscriber and
// an HTTP API (Knative delivers to the service's root): a POST to / is read
// as a CloudEvent and returned; any other path is served by api; any other
// method on / is answered 405. It answers the request itself (and returns
// nil) unless it returns an event.
func EventOrAPI(w http.ResponseWriter, r *http.Request, api http.Handler) *event.Event {
	if r.URL.Path != "/" {
		api.ServeHTTP(w, r)
		return nil
	}
	if r.Method != http.MethodPost {
		WriteError(w, WithStatus(http.StatusMethodNotAllowed, errors.New("POST a CloudEvent to /")))
		return nil
	}
	in, err := ReadEvent(r)
	if err != nil {
		WriteError(w, err)
		return nil
	}
	return in
}
