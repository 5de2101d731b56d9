package fn

import (
	"bytes"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/jobflow/jobflow/pkg/runtime/jsonscan"
)

// Decoding of structured CloudEvents (the elements of a batch).
//
// The SDK's decoder (event.UnmarshalJSON, over jsoniter) was over half of a
// sink's CPU under load (docs/BENCHMARKS.md): it reads every string through
// jsoniter, parses the source URL and validates the content type anew for
// every event. An eventDecoder reads the common form itself, a CloudEvents
// 1.0 object whose members are all strings (the data aside), and hands
// anything else to the SDK's decoder: the result is the SDK's either way,
// which TestDecoderIsTheSDKsDecoding and FuzzDecoder check.

// eventDecoder decodes the events of one batch. It remembers the last
// source and content type it met, which repeat from event to event: their
// parsed forms and validity are worked out once.
type eventDecoder struct {
	source    string
	sourceRef types.URIRef
	sourceOK  bool // Validate finds nothing wrong with it

	ctype     string
	ctypeOK   bool
	ctypeJSON bool // data of this type is JSON (otherwise a JSON string)

	keys []string // extension names met

	// What the events of one batch share (begin): their contexts, and the
	// strings and times their attributes point to, in one allocation each
	// instead of one per event. Attribute strings are substrings of the
	// batch's text. Each is allocated alone once a slab is used up.
	contexts []event.EventContextV1
	strs     []string
	stamps   []types.Timestamp
	data     []byte // the events' unescaped data, one after another, in chunks
}

// begin readies the decoder for a batch of n events.
func (d *eventDecoder) begin(n int) {
	d.contexts = make([]event.EventContextV1, 0, n)
	d.strs = make([]string, 0, 2*n) // subject and content type
	d.stamps = make([]types.Timestamp, 0, n)
}

// fromSlab returns a pointer to v in slab while it has room (appending
// within its capacity never moves what earlier pointers point to), and to
// a v of its own after that.
func fromSlab[T any](slab *[]T, v T) *T {
	if len(*slab) == cap(*slab) {
		p := new(T) // not &v: that would move v to the heap on every call
		*p = v
		return p
	}
	*slab = append(*slab, v)
	return &(*slab)[len(*slab)-1]
}

// decode decodes raw into e; text is string(raw), whose substrings become
// e's attributes. valid reports that e is known to pass e.Validate(); when
// it is false the caller must validate e itself.
func (d *eventDecoder) decode(raw []byte, text string, e *event.Event) (valid bool, err error) {
	if d.fast(raw, text, e) {
		return true, nil
	}
	*e = event.Event{}
	return false, decodeEvent(raw, e)
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

// fast decodes raw (text is string(raw)) into e if it has the common form
// and is valid; it reports false (e then holds garbage) for anything else.
func (d *eventDecoder) fast(raw []byte, text string, e *event.Event) bool {
	i := jsonscan.Space(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	ec := fromSlab(&d.contexts, event.EventContextV1{})
	var seen int
	var dataStart, dataEnd int
	for i = jsonscan.Space(raw, i+1); ; {
		if i >= len(raw) {
			return false
		}
		// A member: "name": value, its name plain lower-case letters,
		// digits or '_'.
		if raw[i] != '"' {
			return false
		}
		j := i + 1
		for j < len(raw) && (raw[j] >= 'a' && raw[j] <= 'z' || raw[j] >= '0' && raw[j] <= '9' || raw[j] == '_') {
			j++
		}
		if j >= len(raw) || raw[j] != '"' || j == i+1 {
			return false
		}
		name := raw[i+1 : j]
		if i = jsonscan.Space(raw, j+1); i >= len(raw) || raw[i] != ':' {
			return false
		}
		i++
		var bit int
		switch string(name) { // no allocation: the compiler compares in place
		case "specversion":
			bit = seenSpecVersion
		case "id":
			bit = seenID
		case "source":
			bit = seenSource
		case "type":
			bit = seenType
		case "subject":
			bit = seenSubject
		case "time":
			bit = seenTime
		case "datacontenttype":
			bit = seenContentType
		case "data":
			bit = seenData
		}
		if seen&bit != 0 {
			return false // a repeated attribute
		}
		seen |= bit
		if bit == seenData {
			if i >= len(raw) || (raw[i] != '{' && raw[i] != '[' && raw[i] != '"') {
				return false // spaces before data, or a literal (which the SDK checks): its business
			}
			start, end, err := jsonscan.ValueEnd(raw, i)
			if err != nil {
				return false
			}
			dataStart, dataEnd, i = start, end, end
		} else {
			vs, end, ok := plainString(raw, i)
			if !ok {
				return false
			}
			v, vt := raw[vs:end-1], text[vs:end-1]
			i = end
			switch bit {
			case seenSpecVersion:
				if string(v) != event.CloudEventsVersionV1 {
					return false
				}
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
					ec.Subject = fromSlab(&d.strs, vt)
				}
			case seenTime:
				if len(v) > 0 { // types.ParseTimestamp's nil for ""
					t, err := types.ParseTime(vt)
					if err != nil {
						return false
					}
					ec.Time = fromSlab(&d.stamps, types.Timestamp{Time: t})
				}
			case seenContentType:
				if len(v) == 0 || !d.parseContentType(v) {
					return false
				}
				ec.DataContentType = fromSlab(&d.strs, d.ctype)
			default: // an extension, a string
				if bytes.IndexByte(name, '_') >= 0 || string(name) == "dataschema" ||
					string(name) == "schemaurl" || string(name) == "datacontentencoding" ||
					(event.MaxExtensionNameLength > 0 && len(name) > event.MaxExtensionNameLength) {
					return false // data_base64, or a name the SDK refuses: its business
				}
				if ec.Extensions == nil {
					ec.Extensions = make(map[string]interface{}, 4)
				}
				key := d.key(name)
				if _, dup := ec.Extensions[key]; dup {
					return false
				}
				ec.Extensions[key] = vt
			}
		}
		if i = jsonscan.Space(raw, i); i >= len(raw) {
			return false
		}
		if raw[i] == '}' {
			i++
			break
		}
		if raw[i] != ',' {
			return false
		}
		i = jsonscan.Space(raw, i+1)
	}
	if jsonscan.Space(raw, i) != len(raw) || seen&seenSpecVersion == 0 || seen&seenSource == 0 {
		return false
	}
	// What Validate checks (the content type's and source's were checked
	// by their parse).
	if strings.TrimSpace(ec.ID) == "" || strings.TrimSpace(ec.Type) == "" ||
		(ec.Subject != nil && strings.TrimSpace(*ec.Subject) == "") || !d.sourceOK {
		return false
	}
	*e = event.Event{Context: ec}
	if seen&seenData == 0 {
		return true
	}
	dataJSON := true
	if ec.DataContentType != nil {
		dataJSON = d.ctypeJSON
	}
	if dataJSON {
		if raw[dataStart] == '"' {
			if _, ok := unescape(nil, raw[dataStart:dataEnd], false); !ok {
				return false // a string the SDK may refuse: its business
			}
		}
		e.DataEncoded = raw[dataStart:dataEnd]
		return true
	}
	q, buf := raw[dataStart:dataEnd], d.data
	if cap(buf)-len(buf) < len(q) {
		buf = make([]byte, 0, max(64<<10, len(q))) // earlier events keep the last chunk
	}
	mark := len(buf)
	data, ok := unescape(buf, q, true)
	if !ok {
		return false
	}
	d.data = data
	// Its own capacity: appending to one event's data never reaches the next.
	e.DataEncoded = data[mark:len(data):len(data)]
	if e.DataEncoded == nil {
		e.DataEncoded = []byte{} // "" is empty data, not none (as the SDK reads it)
	}
	return true
}

// parseSource parses the source as the SDK does (types.ParseURIRef),
// unless it is the last one parsed.
func (d *eventDecoder) parseSource(b []byte) bool {
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
func (d *eventDecoder) parseContentType(b []byte) bool {
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
func (d *eventDecoder) key(name []byte) string {
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

// plainString finds the JSON string at raw[i] if it is printable ASCII
// without escapes (what attributes are in practice): its contents are
// raw[start:end-1], and end is past its closing quote. ok is false
// otherwise.
func plainString(raw []byte, i int) (start, end int, ok bool) {
	if i >= len(raw) || raw[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			return i + 1, j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// unescape appends to out the JSON string q (with its quotes) decoded,
// when it is ASCII with at most the two-character escapes (\n, \", ...);
// ok is false for anything else (\u escapes, other bytes), which the SDK
// then decodes. With keep false it only checks q and appends nothing.
func unescape(out, q []byte, keep bool) (b []byte, ok bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return out, false
	}
	q = q[1 : len(q)-1]
	for len(q) > 0 {
		k := bytes.IndexByte(q, '\\')
		if k < 0 {
			k = len(q)
		}
		for _, c := range q[:k] {
			if c < 0x20 || c >= 0x80 || c == '"' {
				return nil, false
			}
		}
		if keep {
			out = append(out, q[:k]...)
		}
		if k == len(q) {
			break
		}
		if k+1 >= len(q) {
			return nil, false
		}
		var c byte
		switch q[k+1] {
		case '"', '\\', '/':
			c = q[k+1]
		case 'n':
			c = '\n'
		case 't':
			c = '\t'
		case 'r':
			c = '\r'
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		default:
			return nil, false
		}
		if keep {
			out = append(out, c)
		}
		q = q[k+2:]
	}
	return out, true
}
