package job

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// NewEvent builds a CloudEvent with JSON data. The partition key is the job
// id, so all events of one job land on one partition, in order.
func NewEvent(typ, source, id string, j Job) (event.Event, error) {
	e := event.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource(source)
	e.SetSubject(j.ID.String())
	e.SetTime(time.Now().UTC())
	e.SetExtension("partitionkey", j.ID.String())
	if err := e.SetData(event.ApplicationJSON, j); err != nil {
		return e, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return e, nil
}

// Decode reads e's data as JSON into v; unknown fields are an error when
// strict is set (client input), and ignored otherwise (events from other
// versions of the pipeline).
func Decode(e event.Event, v any, strict bool) error {
	if ct := e.DataContentType(); ct != "" && ct != event.ApplicationJSON && ct != "text/json" {
		if mt, _, _ := bytes.Cut([]byte(ct), []byte(";")); string(bytes.TrimSpace(mt)) != event.ApplicationJSON {
			return fmt.Errorf("data content type %q: want application/json", ct)
		}
	}
	return DecodeJSON(e.Data(), v, strict)
}

// DecodeJSON decodes one JSON value from data into v.
func DecodeJSON(data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("invalid JSON: more than one value")
	}
	return nil
}

// DecodeJob reads a Job from e and checks the fields every stage relies on.
func DecodeJob(e event.Event) (Job, error) {
	var j Job
	if err := Decode(e, &j, false); err != nil {
		return j, err
	}
	if j.ID.String() == "00000000-0000-0000-0000-000000000000" {
		return j, fmt.Errorf("job has no id")
	}
	if j.CreateDate.IsZero() {
		return j, fmt.Errorf("job %s has no create_date", j.ID)
	}
	if j.Sleep < 0 || j.DataSize < 0 {
		return j, fmt.Errorf("job %s: sleep and data_size must not be negative", j.ID)
	}
	return j, nil
}
