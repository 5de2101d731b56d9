package trigger

import (
	"bytes"
	"net/url"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
)

// The header screen: most records of a broker's topic are events a given
// trigger's filter does not match, and most filters are exact, prefix or
// suffix matches on attributes (type above all). For a binary-mode record
// those attributes are its ce_* headers, so the screen evaluates such a
// filter on the headers alone and rejects a record without building its
// event. It only ever rejects, and only when sure: it answers "unsure"
// (the full filter decides, on the event) for
//   - a record that is not plainly a valid binary-mode CloudEvents 1.0
//     record (structured mode, a header repeated, a required attribute
//     missing or one that would not parse): its event may be invalid,
//     which is a drop, not a filtered record;
//   - a filter on an attribute whose event value is not its header's text
//     as is (time, source, dataschema, ...), or on the extensions the
//     trigger adds (knativekafkapartition, knativekafkaoffset) or the SDK's
//     Kafka reader may add (kafkaoffset, kafkapartition, kafkatopic);
//   - cesql, and anything built on an unsure part that could go either way.
// filter_test.go checks it against knative's filters on a table of cases.

// verdict is a filter's result on a record's headers; known is false when
// only the event can tell.
type verdict struct {
	res   eventfilter.FilterResult
	known bool
}

var unsure = verdict{}

// headerRule is a filter evaluated on a record's headers.
type headerRule interface {
	screen(h recordHeaders) verdict
}

// newHeaderRule is the header form of the filter NewFilter builds.
func newHeaderRule(attrs map[string]string, filters []eventingv1.SubscriptionsAPIFilter) headerRule {
	switch {
	case len(filters) > 0:
		return allRule(headerRuleList(filters))
	case attrs != nil:
		return attributesRule(attrs)
	}
	return nil
}

// headerRuleOf mirrors materialize: the same dialect precedence, an
// invalid filter is nil (skipped by its list).
func headerRuleOf(f eventingv1.SubscriptionsAPIFilter) headerRule {
	switch {
	case len(f.Exact) > 0:
		return leafRule(f.Exact, func(s, v string) bool { return s == v })
	case len(f.Prefix) > 0:
		return leafRule(f.Prefix, strings.HasPrefix)
	case len(f.Suffix) > 0:
		return leafRule(f.Suffix, strings.HasSuffix)
	case len(f.All) > 0:
		return allRule(headerRuleList(f.All))
	case len(f.Any) > 0:
		return anyRule(headerRuleList(f.Any))
	case f.Not != nil:
		return notRule{headerRuleOf(*f.Not)}
	case f.CESQL != "":
		return unsureRule{}
	}
	return nil
}

func headerRuleList(filters []eventingv1.SubscriptionsAPIFilter) []headerRule {
	out := make([]headerRule, 0, len(filters))
	for _, f := range filters {
		if r := headerRuleOf(f); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// leafRule is an exact, prefix or suffix filter: it fails when one
// attribute is missing or does not match (as knative's, whose result does
// not depend on the order it checks them in).
func leafRule(m map[string]string, match func(s, v string) bool) headerRule {
	l := &leaf{match: match}
	for k, v := range m {
		if k == "" || v == "" {
			return nil // knative refuses to build it: skipped
		}
		l.keys = append(l.keys, newAttrKey(k, v))
	}
	return l
}

type leaf struct {
	keys  []attrKey
	match func(s, v string) bool
}

func (l *leaf) screen(h recordHeaders) verdict {
	all := true
	for _, k := range l.keys {
		s, found, ok := h.lookup(k)
		switch {
		case !ok:
			all = false
		case !found || !l.match(s, k.want):
			return verdict{eventfilter.FailFilter, true}
		}
	}
	if !all {
		return unsure
	}
	return verdict{eventfilter.PassFilter, true}
}

// attributesRule is spec.filter.attributes: an attribute missing or empty
// fails an empty (any) value, else its value must be equal.
func attributesRule(m map[string]string) headerRule {
	a := attributesScreen{}
	for k, v := range m {
		a = append(a, newAttrKey(k, v))
	}
	return a
}

type attributesScreen []attrKey

func (a attributesScreen) screen(h recordHeaders) verdict {
	all := true
	for _, k := range a {
		s, found, ok := h.lookup(k)
		switch {
		case !ok:
			all = false
		case !found || (k.want == eventingv1.TriggerAnyFilter && s == "") || (k.want != eventingv1.TriggerAnyFilter && k.want != s):
			return verdict{eventfilter.FailFilter, true}
		}
	}
	if !all {
		return unsure
	}
	return verdict{eventfilter.PassFilter, true}
}

// allRule is allOf: a sure failure of any child fails it whatever the
// others say; else it is the last child's result, if all are known.
type allRule []headerRule

func (a allRule) screen(h recordHeaders) verdict {
	v, all := verdict{eventfilter.NoFilter, true}, true
	for _, r := range a {
		if v = r.screen(h); !v.known {
			all = false
		} else if v.res == eventfilter.FailFilter {
			return v
		}
	}
	if !all {
		return unsure
	}
	return v
}

// anyRule is anyOf: a sure pass of any child passes it; else it is the
// last child's result, if all are known.
type anyRule []headerRule

func (a anyRule) screen(h recordHeaders) verdict {
	v, all := verdict{eventfilter.NoFilter, true}, true
	for _, r := range a {
		if v = r.screen(h); !v.known {
			all = false
		} else if v.res == eventfilter.PassFilter {
			return v
		}
	}
	if !all {
		return unsure
	}
	return v
}

// notRule is knative's not: pass and fail swap, NoFilter stays.
type notRule struct{ r headerRule }

func (n notRule) screen(h recordHeaders) verdict {
	if n.r == nil {
		return verdict{eventfilter.NoFilter, true}
	}
	v := n.r.screen(h)
	switch {
	case !v.known:
		return unsure
	case v.res == eventfilter.FailFilter:
		return verdict{eventfilter.PassFilter, true}
	case v.res == eventfilter.PassFilter:
		return verdict{eventfilter.FailFilter, true}
	}
	return v
}

// unsureRule (cesql) is decided on the event only.
type unsureRule struct{}

func (unsureRule) screen(recordHeaders) verdict { return unsure }

// recordHeaders are the headers of a record that plainly is a valid
// binary-mode CloudEvents 1.0 record (checked by binaryHeaders).
type recordHeaders []*sarama.RecordHeader

// attrKey is an attribute a filter names, with the value it wants and
// how the headers tell it.
type attrKey struct {
	want   string
	header string // the header that holds it
	how    attrKind
}

type attrKind int

const (
	undecidable attrKind = iota // only the event tells
	standard                    // a string attribute the event always has ("" if unset)
	extension                   // present only if its header is
)

func newAttrKey(k, want string) attrKey {
	switch k {
	case "type", "id", "subject":
		return attrKey{want, "ce_" + k, standard}
	case "datacontenttype":
		return attrKey{want, "content-type", standard}
	case "specversion", "time", "source", "dataschema", "schemaurl", "datamediatype", "datacontentencoding",
		"knativekafkapartition", "knativekafkaoffset", "kafkaoffset", "kafkapartition", "kafkatopic":
		return attrKey{want: want}
	}
	if !validName([]byte(k)) {
		return attrKey{want: want}
	}
	return attrKey{want, "ce_" + k, extension}
}

// lookup is what knative's LookupAttribute would find for k in the
// record's event: its value and whether it is present (found). ok is
// false when the headers cannot tell (see the file's comment).
func (h recordHeaders) lookup(k attrKey) (v string, found, ok bool) {
	if k.how == undecidable {
		return "", false, false
	}
	v, found = h.get(k.header)
	return v, found || k.how == standard, true
}

// get is the value of the header named key (any case).
func (h recordHeaders) get(key string) (string, bool) {
	for _, x := range h {
		if len(x.Key) == len(key) && bytes.EqualFold(x.Key, []byte(key)) {
			return string(x.Value), true
		}
	}
	return "", false
}

// binaryHeaders returns the headers of m if it plainly is a valid
// binary-mode CloudEvents 1.0 record: no nil or repeated header among the
// CloudEvents ones, not structured, specversion 1.0, id, source and type
// present, source, dataschema and time that parse, valid extension names.
func binaryHeaders(headers []*sarama.RecordHeader) (recordHeaders, bool) {
	var version, id, source, typ bool
	for i, x := range headers {
		if x == nil {
			return nil, false
		}
		k := x.Key
		isCT := bytes.EqualFold(k, []byte("content-type"))
		if !isCT && (len(k) <= 3 || !bytes.EqualFold(k[:3], []byte("ce_"))) {
			continue
		}
		for _, y := range headers[:i] {
			if y != nil && bytes.EqualFold(y.Key, k) {
				return nil, false
			}
		}
		if isCT {
			if len(x.Value) == 0 || hasPrefixFold(x.Value, "application/cloudevents") {
				return nil, false
			}
			continue
		}
		name, v := k[3:], x.Value
		switch {
		case is(name, "specversion"):
			version = string(v) == event.CloudEventsVersionV1
		case is(name, "id"):
			id = len(v) > 0
		case is(name, "type"):
			typ = len(v) > 0
		case is(name, "source"):
			source = validURIRef(v)
		case is(name, "dataschema"):
			if !validURIRef(v) {
				return nil, false
			}
		case is(name, "time"):
			if _, err := types.ParseTime(string(v)); err != nil {
				return nil, false
			}
		case is(name, "datacontenttype"):
			return nil, false // besides content-type: the SDK's reader decides
		case is(name, "subject"):
			if len(v) == 0 {
				return nil, false
			}
		case !validNameFold(name):
			return nil, false
		}
	}
	return headers, version && id && source && typ
}

func is(b []byte, name string) bool { return bytes.EqualFold(b, []byte(name)) }

// validURIRef: b parses as a non-empty URI reference, as the SDK requires
// of source and dataschema; a plain path (no colon, no escapes) is one.
func validURIRef(b []byte) bool {
	plain := len(b) > 0
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/-._~", c) >= 0) {
			plain = false
			break
		}
	}
	if plain {
		return true
	}
	u, err := url.Parse(string(b))
	return err == nil && u.String() != ""
}

// validNameFold: an attribute name once lower-cased.
func validNameFold(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// validName: a CloudEvents attribute name (lower-case letters and digits).
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
