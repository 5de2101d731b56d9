package cebatch

import (
	"bytes"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// A decoder decodes the events of one batch. The SDK's decoder reads every
// string through jsoniter, parses the source URL and validates the content
// type anew for every event; a decoder reads the common form itself, a
// CloudEvents 1.0 object whose members are all plain strings (the data
// aside), and remembers the last source and content type it met, which
// repeat from event to event. Anything else goes to the SDK's decoder.
type decoder struct {
	source    string
	sourceRef types.URIRef
	sourceOK  bool // Validate finds nothing wrong with it

	ctype     string
	ctypeOK   bool
	ctypeJSON bool // data of this type is JSON (otherwise a JSON string)

	keys []string // extension names met
}

// decode decodes raw into e; text is string(raw), whose substrings become
// e's attributes. valid reports that e is known to pass e.Validate(); when
// it is false the caller must validate e itself.
func (d *decoder) decode(raw []byte, text string, e *event.Event) (valid bool, err error) {
	if d.fast(raw, text, e) {
		return true, nil
	}
	*e = event.Event{}
	return false, e.UnmarshalJSON(raw)
}

// The attributes the fast path reads; any other member that is not an
// extension (dataschema, data_base64, ...) sends the event to the SDK.
const (
	seenSpecVersion = 1 << iota
	seenID
	seenSource
	seenType
	seenSubject
	seenTime
	seenContentType
	seenData
)

// attributes maps a member's name to its bit; an extension has none.
var attributes = map[string]int{
	"specversion": seenSpecVersion, "id": seenID, "source": seenSource, "type": seenType,
	"subject": seenSubject, "time": seenTime, "datacontenttype": seenContentType, "data": seenData,
}

// fast decodes raw (text is string(raw)) into e if it has the common form
// and is valid; it reports false (e then holds garbage) for anything else.
func (d *decoder) fast(raw []byte, text string, e *event.Event) bool {
	s := scanner{raw: raw, text: text}
	if !s.open() {
		return false
	}
	ec := &event.EventContextV1{}
	var seen int
	var data []byte
	for more := true; more; {
		name, ok := s.name()
		if !ok {
			return false
		}
		bit := attributes[string(name)] // no allocation: the compiler looks up in place
		if seen&bit != 0 {
			return false // a repeated attribute
		}
		seen |= bit
		if bit == seenData {
			data, ok = s.data()
		} else {
			ok = d.attribute(ec, bit, name, &s)
		}
		if !ok {
			return false
		}
		if more, ok = s.next(); !ok {
			return false
		}
	}
	const required = seenSpecVersion | seenSource
	if !s.end() || seen&required != required || !d.valid(ec) {
		return false
	}
	*e = event.Event{Context: ec}
	return data == nil || d.setData(e, data)
}

// attribute reads the plain string value of the member name (bit says
// which attribute it is, 0 an extension) into ec.
func (d *decoder) attribute(ec *event.EventContextV1, bit int, name []byte, s *scanner) bool {
	v, vt, ok := s.plainString()
	if !ok {
		return false
	}
	switch bit {
	case seenSpecVersion:
		return string(v) == event.CloudEventsVersionV1
	case seenID:
		ec.ID = vt
	case seenType:
		ec.Type = vt
	case seenSource:
		if !d.parseSource(v) {
			return false
		}
		ec.Source = d.sourceRef
	case seenSubject:
		if len(v) > 0 {
			sub := vt // not &vt: that would move vt to the heap on every call
			ec.Subject = &sub
		}
	case seenTime:
		if len(v) > 0 { // types.ParseTimestamp's nil for ""
			t, err := types.ParseTime(vt)
			if err != nil {
				return false
			}
			ec.Time = &types.Timestamp{Time: t}
		}
	case seenContentType:
		if len(v) == 0 || !d.parseContentType(v) {
			return false
		}
		ct := d.ctype
		ec.DataContentType = &ct
	default:
		return d.extension(ec, name, vt)
	}
	return true
}

// extension sets the string extension name; names the SDK treats apart
// (data_base64, dataschema, ...) or refuses are its business.
func (d *decoder) extension(ec *event.EventContextV1, name []byte, v string) bool {
	if bytes.IndexByte(name, '_') >= 0 || string(name) == "dataschema" ||
		string(name) == "schemaurl" || string(name) == "datacontentencoding" ||
		(event.MaxExtensionNameLength > 0 && len(name) > event.MaxExtensionNameLength) {
		return false
	}
	if ec.Extensions == nil {
		ec.Extensions = make(map[string]interface{}, 4)
	}
	key := d.key(name)
	if _, dup := ec.Extensions[key]; dup {
		return false
	}
	ec.Extensions[key] = v
	return true
}

// valid is what Validate checks that the parses of the source and the
// content type did not.
func (d *decoder) valid(ec *event.EventContextV1) bool {
	return strings.TrimSpace(ec.ID) != "" && strings.TrimSpace(ec.Type) != "" &&
		(ec.Subject == nil || strings.TrimSpace(*ec.Subject) != "") && d.sourceOK
}

// setData gives e the data q (a JSON value) as the SDK does: JSON data as
// it is, any other type's data (a JSON string) unescaped.
func (d *decoder) setData(e *event.Event, q []byte) bool {
	if e.DataContentType() == "" || d.ctypeJSON {
		if q[0] == '"' {
			if _, ok := unescape(nil, q, false); !ok {
				return false // a string the SDK may refuse: its business
			}
		}
		e.DataEncoded = q[:len(q):len(q)] // appending to it must not write into the batch
		return true
	}
	// Never nil, even for "": that is empty data, not none (as the SDK reads it).
	data, ok := unescape(make([]byte, 0, len(q)), q, true)
	if !ok {
		return false
	}
	e.DataEncoded = data
	return true
}

// parseSource parses the source as the SDK does (types.ParseURIRef),
// unless it is the last one parsed.
func (d *decoder) parseSource(b []byte) bool {
	if string(b) == d.source && d.source != "" {
		return true
	}
	s := string(b)
	ref := types.ParseURIRef(s)
	if ref == nil {
		return false // the SDK's error
	}
	d.source, d.sourceRef = s, *ref
	d.sourceOK = strings.TrimSpace(ref.String()) != ""
	return true
}

// parseContentType works out what the SDK decides from a content type:
// whether Validate accepts it and whether data of that type is JSON.
func (d *decoder) parseContentType(b []byte) bool {
	if string(b) == d.ctype && d.ctype != "" {
		return d.ctypeOK
	}
	s := string(b)
	ec := event.EventContextV1{ID: "x", Type: "x", Source: types.URIRef{}, DataContentType: &s}
	ec.Source.Path = "x"
	mt, err := ec.GetDataMediaType()
	d.ctype, d.ctypeOK = s, err == nil && ec.Validate() == nil
	switch mt {
	case event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON, "":
		d.ctypeJSON = true // the SDK's isJSON
	default:
		d.ctypeJSON = false
	}
	return d.ctypeOK
}

// key returns name as a string, the same string for the same name (the
// extensions' names repeat from event to event).
func (d *decoder) key(name []byte) string {
	for _, k := range d.keys {
		if string(name) == k {
			return k
		}
	}
	k := string(name)
	if len(d.keys) < 8 {
		d.keys = append(d.keys, k)
	}
	return k
}
