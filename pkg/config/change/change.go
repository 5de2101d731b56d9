// Package change is the event of live configuration: one
// dev.jobflow.config.changed CloudEvent per changed key, keyed by the key
// (its partitionkey, so the Kafka record key), with the new value, the Git
// commit that made it and the revision it replaces. A deleted key is an
// event without data: a Kafka tombstone that still says which revision
// deleted the key.
package change

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// Type is the CloudEvent type of a change.
const Type = "dev.jobflow.config.changed"

// The extensions every change carries, so that a tombstone (no data) is
// still a complete event.
const (
	extRevision = "configrevision"
	extPrevious = "configprevious"
	extKey      = "partitionkey"
)

// Change is one key's new value (or its deletion) at a revision.
type Change struct {
	Key string `json:"key"`
	// Value is the key's JSON value; empty when Deleted.
	Value json.RawMessage `json:"value,omitempty"`
	// Deleted: the key is gone from the repository.
	Deleted bool `json:"deleted,omitempty"`
	// Revision is the Git commit of this value.
	Revision string `json:"revision"`
	// PreviousRevision is the commit of the value this one replaces ("" for a new key).
	PreviousRevision string `json:"previous_revision,omitempty"`
}

var idSpace = uuid.MustParse("0c2f3a8e-5d1b-4f7e-9a61-1f0b9f3c7d42")

// ID is the event id: derived from key, revision and deletion, so a change
// sent twice is recognisably the same event.
func (c Change) ID() string {
	return uuid.NewSHA1(idSpace, []byte(fmt.Sprintf("%s\x00%s\x00%t", c.Key, c.Revision, c.Deleted))).String()
}

// CheckKey refuses keys that cannot be addressed: empty, with a comma (the
// separator of ?keys=), a '*' (the prefix mark) or control characters.
func CheckKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	if strings.ContainsAny(key, ",*") {
		return fmt.Errorf("key %q: ',' and '*' are not allowed", key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("key %q: control characters are not allowed", key)
		}
	}
	return nil
}

// Event is the CloudEvent of c, from source.
func (c Change) Event(source string) (event.Event, error) {
	e := event.New()
	e.SetID(c.ID())
	e.SetSource(source)
	e.SetType(Type)
	e.SetSubject(c.Key)
	e.SetExtension(extKey, c.Key)
	e.SetExtension(extRevision, c.Revision)
	if c.PreviousRevision != "" {
		e.SetExtension(extPrevious, c.PreviousRevision)
	}
	if c.Deleted {
		return e, nil // no data: a tombstone
	}
	if !json.Valid(c.Value) {
		return e, fmt.Errorf("key %s: value is not JSON", c.Key)
	}
	if err := e.SetData(event.ApplicationJSON, c); err != nil {
		return e, fmt.Errorf("key %s: %w", c.Key, err)
	}
	return e, nil
}

// FromEvent reads a change back from its event.
func FromEvent(e event.Event) (Change, error) {
	if e.Type() != Type {
		return Change{}, fmt.Errorf("event type %q: want %s", e.Type(), Type)
	}
	ext := e.Extensions()
	str := func(name string) string {
		if v, ok := ext[name]; ok {
			if s, ok := v.(string); ok {
				return s
			}
			return fmt.Sprint(v)
		}
		return ""
	}
	if len(e.Data()) == 0 {
		c := Change{Key: e.Subject(), Deleted: true, Revision: str(extRevision), PreviousRevision: str(extPrevious)}
		if err := CheckKey(c.Key); err != nil {
			return Change{}, err
		}
		return c, nil
	}
	var c Change
	if err := json.Unmarshal(e.Data(), &c); err != nil {
		return Change{}, fmt.Errorf("change data: %w", err)
	}
	if err := CheckKey(c.Key); err != nil {
		return Change{}, err
	}
	if c.Key != e.Subject() {
		return Change{}, fmt.Errorf("data key %q differs from subject %q", c.Key, e.Subject())
	}
	if len(c.Value) == 0 {
		return Change{}, fmt.Errorf("key %s: a change without deletion needs a value", c.Key)
	}
	return c, nil
}
