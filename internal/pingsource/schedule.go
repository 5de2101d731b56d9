// Package pingsource is the local engine's PingSource (sources.knative.dev/v1):
// on every tick of its cron schedule it sends one event of type
// dev.knative.sources.ping to its sink, as Knative's mtping adapter does.
// Schedules are parsed by the library and with the options Knative uses, so a
// schedule means here what it means on a cluster; ticks missed while the
// engine was down are never fired late.
package pingsource

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// EventType is the type of every ping event.
const EventType = "dev.knative.sources.ping"

// DefaultSchedule is Knative's default: every minute.
const DefaultSchedule = "* * * * *"

// parser is Knative's: five fields with optional leading seconds, and the
// @hourly-style descriptors.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Spec is one PingSource's spec.
type Spec struct {
	Namespace, Name string
	Schedule        string // cron; empty: DefaultSchedule
	Timezone        string // IANA name; empty: the engine's local time
	ContentType     string
	Data            string // sent as is
	DataBase64      string // sent decoded
}

// Source is the CloudEvent source of the PingSource's events.
func (s Spec) Source() string {
	return fmt.Sprintf("/apis/v1/namespaces/%s/pingsources/%s", s.Namespace, s.Name)
}

// Check validates a spec as Knative's webhook does and returns its parsed
// schedule and the data its events carry.
func (s Spec) Check() (cron.Schedule, []byte, error) {
	sched, err := s.schedule()
	if err != nil {
		return nil, nil, err
	}
	data, err := s.data()
	if err != nil {
		return nil, nil, err
	}
	return sched, data, nil
}

func (s Spec) schedule() (cron.Schedule, error) {
	expr := s.Schedule
	if expr == "" {
		expr = DefaultSchedule
	}
	if strings.HasPrefix(strings.TrimSpace(expr), "@every") {
		return nil, errors.New("schedule: unsupported descriptor @every")
	}
	if s.Timezone != "" {
		expr = "CRON_TZ=" + s.Timezone + " " + expr
	}
	sched, err := parser.Parse(expr)
	if err != nil {
		if strings.HasPrefix(err.Error(), "provided bad location") {
			return nil, fmt.Errorf("timezone %q: %w", s.Timezone, err)
		}
		return nil, fmt.Errorf("schedule %q: %w", s.Schedule, err)
	}
	return sched, nil
}

func (s Spec) data() ([]byte, error) {
	var data []byte
	switch {
	case s.Data != "" && s.DataBase64 != "":
		return nil, errors.New("expected exactly one, got both: data, dataBase64")
	case s.DataBase64 != "":
		b, err := base64.StdEncoding.DecodeString(s.DataBase64)
		if err != nil {
			return nil, fmt.Errorf("dataBase64: %w", err)
		}
		data = b
	case s.Data != "":
		data = []byte(s.Data)
	}
	if data != nil && s.ContentType == "application/json" {
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil, fmt.Errorf("data: contentType is application/json but the data is not a JSON object: %w", err)
		}
	}
	return data, nil
}
