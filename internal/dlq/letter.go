// Package dlq reads and redrives dead letters: the events a KafkaSource or
// Trigger could not deliver and sent to its dead-letter sink, a KafkaSink
// whose topic holds them as binary-mode CloudEvents records carrying
// Knative's knativeerror* extensions (destination, status, the sink's
// answer, base64).
//
// The API, for the CLI (`jobflow dlq`) and any page:
//
//	letters, err := dlq.Read(ctx, dlq.Source{Brokers: b, Topics: t}, dlq.Filter{Destination: "pgsink"}, 100)
//	r, err := dlq.NewRedriver(b, policy)         // delivery.Policy: the normal rules
//	res := r.Redrive(ctx, letters[0])            // res.Outcome: Delivered or DeadLettered
//
// Reading never moves a consumer group. A redrive delivers the event as it
// was before it was dead-lettered (the knativeerror* extensions taken off)
// to its destination with the delivery policy; if it fails again it is
// written back to the topic it came from with the new knativeerror* and
// jobflowredriveof naming the letter it came from, so it is never lost.
// Kafka cannot delete a record: a redriven letter stays in the topic, and
// recipients dedupe a second redrive on source + id as they dedupe any
// redelivery.
package dlq

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Knative's extensions on a dead letter, and jobflow's own.
const (
	ExtDestination = "knativeerrordest"
	ExtCode        = "knativeerrorcode"
	ExtData        = "knativeerrordata"
	// ExtRedriveOf names the letter (Ref) a redriven event that failed
	// again came from.
	ExtRedriveOf = "jobflowredriveof"
)

// Ref names a letter where it sits: topic/partition/offset.
type Ref struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (r Ref) String() string { return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset) }

// ParseRef reads topic/partition/offset.
func ParseRef(s string) (Ref, error) {
	i := strings.LastIndex(s, "/")
	j := strings.LastIndex(s[:max(i, 0)], "/")
	if i < 0 || j <= 0 {
		return Ref{}, fmt.Errorf("letter %q: want topic/partition/offset", s)
	}
	p, err1 := strconv.ParseInt(s[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(s[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Ref{}, fmt.Errorf("letter %q: want topic/partition/offset", s)
	}
	return Ref{Topic: s[:j], Partition: int32(p), Offset: o}, nil
}

// Letter is one dead-lettered event with its knativeerror* context decoded.
type Letter struct {
	Ref Ref `json:"ref"`
	// Time is when it was dead-lettered (the record's timestamp).
	Time time.Time `json:"time"`
	// Destination is where it could not be delivered (knativeerrordest).
	Destination string `json:"destination"`
	// Status is the destination's last answer, 0 for none (knativeerrorcode).
	Status int `json:"status"`
	// Answer is the start of the destination's answer (knativeerrordata, decoded).
	Answer []byte `json:"-"`
	// RedriveOf is the letter a failed redrive came from, if any.
	RedriveOf string `json:"redrive_of,omitempty"`
	// Event is the event as dead-lettered, extensions included.
	Event event.Event `json:"event"`
}

// AnswerText is Answer as text for people.
func (l Letter) AnswerText() string { return string(l.Answer) }

// Original is the event as it was before it was dead-lettered: what a
// redrive delivers.
func (l Letter) Original() event.Event {
	e := l.Event.Clone()
	for _, ext := range []string{ExtDestination, ExtCode, ExtData, ExtRedriveOf} {
		e.SetExtension(ext, nil)
	}
	return e
}

// newLetter decodes the knativeerror* extensions of e. A record without
// them (written to the topic by something else) is still a letter, with no
// destination: it cannot be redriven.
func newLetter(ref Ref, at time.Time, e event.Event) Letter {
	l := Letter{Ref: ref, Time: at, Event: e}
	ext := e.Extensions()
	l.Destination = text(ext[ExtDestination])
	l.RedriveOf = text(ext[ExtRedriveOf])
	if code, err := strconv.Atoi(text(ext[ExtCode])); err == nil {
		l.Status = code
	}
	if data := text(ext[ExtData]); data != "" {
		if b, err := base64.StdEncoding.DecodeString(data); err == nil {
			l.Answer = b
		} else {
			l.Answer = []byte(data) // not base64: keep it as it came
		}
	}
	return l
}

func text(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// Filter chooses letters; zero fields match everything.
type Filter struct {
	// Destination matches letters whose destination contains it.
	Destination string
	// Type is the event type, exactly.
	Type string
	// Since and Until bound the time the letter was dead-lettered
	// (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Refs, when set, are the only letters that match.
	Refs []Ref
}

// Match reports whether l passes the filter.
func (f Filter) Match(l Letter) bool {
	if f.Destination != "" && !strings.Contains(l.Destination, f.Destination) {
		return false
	}
	if f.Type != "" && l.Event.Type() != f.Type {
		return false
	}
	if !f.Since.IsZero() && l.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !l.Time.Before(f.Until) {
		return false
	}
	if len(f.Refs) > 0 {
		for _, r := range f.Refs {
			if r == l.Ref {
				return true
			}
		}
		return false
	}
	return true
}
