package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/pingsource"
	"github.com/jobflow/jobflow/internal/scaler"
)

func busyStatus() (st, prev Status) {
	fns := map[string]FunctionStatus{}
	for _, n := range []string{"chsink", "converter", "counter", "dialogs", "pgsink", "processor", "query", "receiver"} {
		fns[n] = FunctionStatus{Ready: true, Restarts: 2, Scale: &scaler.Status{Instances: 10, Starting: 2, Draining: 1, Held: 120}}
	}
	fns["jobflow-cdc"] = FunctionStatus{Ready: false}
	big := kafkasource.Stats{Delivered: 123456789, InFlight: 1000, Failures: 98765, DeadLettered: 4321, Dropped: 12, Filtered: 77}
	st = Status{Functions: fns,
		Sources:  map[string]kafkasource.Stats{"a-rather-long-source-name": big, "pgsink-source": {Delivered: 5}},
		Triggers: map[string]kafkasource.Stats{"job-requests": big},
		Pings:    map[string]pingsource.Stats{"heartbeat": {Fired: 3, Delivered: 3}}}
	prev = Status{Sources: map[string]kafkasource.Stats{"pgsink-source": {Delivered: 0}}}
	return st, prev
}

// Status lines fit the width, even the widest figures, and say it all.
func TestStatusLinesFitTheWidth(t *testing.T) {
	st, prev := busyStatus()
	for _, width := range []int{80, 120} {
		lines := statusLines(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 5*time.Second, st, prev, width)
		text := strings.Join(lines, "\n")
		for _, l := range lines {
			if len(l) > width {
				t.Errorf("width %d: %d columns: %q", width, len(l), l)
			}
		}
		for _, want := range []string{"03:04:05 pgsink-source", "delivered 5", "1.0/s", "trigger job-requests", "retries 98765",
			"dead-lettered 4321", "dropped 12", "filtered 77", "pingsource heartbeat", "fired 3", "processor 10 +2 starting -1 draining held 120 restarts 2",
			"jobflow-cdc NOT READY"} {
			if !strings.Contains(text, want) {
				t.Errorf("width %d: no %q in\n%s", width, want, text)
			}
		}
		if width == 80 {
			t.Logf("\n%s", text)
		}
	}
	// A quiet source shows no zero counts of trouble.
	quiet := strings.Join(sourceFields(kafkasource.Stats{Delivered: 3}, kafkasource.Stats{}, time.Second), "  ")
	if strings.Contains(quiet, "retries") || strings.Contains(quiet, "dropped") {
		t.Errorf("quiet source: %q", quiet)
	}
}

// The last line says what was stopped.
func TestStoppedLineSaysWhatWasStopped(t *testing.T) {
	st, _ := busyStatus()
	e := New(Config{}, nil, nil)
	p := &plan.Plan{Functions: make([]plan.Function, 8), Sources: make([]plan.Source, 7), Triggers: make([]plan.Trigger, 1),
		Pings: make([]pingsource.Ping, 1), Adapters: make([]plan.Adapter, 1)}
	lines := wrap("stopped in 1.2s:", e.stopped(p, st), 80)
	text := strings.Join(lines, "\n")
	for _, l := range lines {
		if len(l) > 80 {
			t.Errorf("%d columns: %q", len(l), l)
		}
	}
	for _, want := range []string{"8 functions (104 instances)", "7 KafkaSources", "1 Trigger,", "1 PingSource", "1 adapter",
		"the Kafka broker", "PostgreSQL", "ClickHouse", "246913583 events delivered"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	t.Logf("\n%s", text)
}
