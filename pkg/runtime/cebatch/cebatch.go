// Package cebatch reads the body of a CloudEvents HTTP batch-mode request
// (Content-Type application/cloudevents-batch+json: a JSON array of
// structured events) into events, exactly as the CloudEvents SDK would.
//
// It exists for speed: the SDK's way (encoding/json splitting the array,
// then jsoniter decoding each event) was most of a sink's CPU under load
// (docs/BENCHMARKS.md). Read splits the array with jsonscan and decodes
// the common form of an event itself (decoder.go); any event not in that
// form goes to the SDK's decoder, so the result is the SDK's either way,
// which TestDecoderIsTheSDKsDecoding and FuzzDecoder check.
package cebatch

import (
	"fmt"
	"io"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/runtime/jsonscan"
)

// Read decodes the batch in r's body. An error names the first invalid
// event; a body over the reader's limit is the reader's error
// (*http.MaxBytesError), wrapped.
func Read(r *http.Request) ([]event.Event, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, fmt.Errorf("read batch: %w", err)
	}
	return decodeAll(body)
}

// decodeAll decodes a batch: the events of the JSON array body.
func decodeAll(body []byte) ([]event.Event, error) {
	elems, err := jsonscan.SplitSpans(body)
	if err != nil {
		return nil, fmt.Errorf("invalid CloudEvents batch: %w", err)
	}
	events := make([]event.Event, len(elems))
	var d decoder
	text := string(body) // the events' attributes are its substrings: one copy for the batch
	for i, sp := range elems {
		valid, err := d.decode(body[sp.Start:sp.End], text[sp.Start:sp.End], &events[i])
		if err == nil && !valid {
			err = events[i].Validate()
		}
		if err != nil {
			return nil, fmt.Errorf("invalid CloudEvent %d of the batch: %w", i, err)
		}
	}
	return events, nil
}

// readBody reads a request's body into one buffer of its declared length
// (io.ReadAll grows its buffer from 512 bytes, copying a batch of half a
// megabyte a dozen times); the body's reader (http.MaxBytesReader) still
// bounds what is read.
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 || n > 16<<20 {
		return io.ReadAll(r.Body)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}
