package dlq_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/dlq"
	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// recipient is a function that refuses events while refusing is set, and
// records what it took.
type recipient struct {
	mu       sync.Mutex
	refusing bool
	took     []event.Event
}

func (r *recipient) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	e, err := fn.ReadEvent(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refusing {
		http.Error(w, `{"error":"sleep -1 ms: want 0 to 10000"}`, http.StatusBadRequest)
		return
	}
	r.took = append(r.took, *e)
}

func (r *recipient) set(refusing bool) { r.mu.Lock(); r.refusing = refusing; r.mu.Unlock() }

func (r *recipient) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.took...)
}

func newEvent(id, typ string) *event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType(typ)
	e.SetExtension("partitionkey", id)
	_ = e.SetData("application/json", map[string]string{"id": id})
	return &e
}

// Dead letters written by the engine's own retrier through a real KafkaSink
// are listed with their context, filtered, and redriven: delivered once the
// destination takes them, written back (never lost) when it refuses again.
func TestReadFilterRedrive(t *testing.T) {
	const topic = "dead-letter-topic"
	brokers := testenv.Kafka(t, 2, topic)
	ingress, err := kafkasink.New(brokers, []kafkasink.Sink{{Namespace: "jobflow", Name: "dead-letter-sink", Topic: topic}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ingress.Close()
	sinkSrv := httptest.NewServer(ingress)
	defer sinkSrv.Close()

	procRecipient, pgRecipient := &recipient{refusing: true}, &recipient{refusing: true}
	proc, pg := httptest.NewServer(procRecipient), httptest.NewServer(pgRecipient)
	defer proc.Close()
	defer pg.Close()
	policy := delivery.Policy{Retry: 1, Backoff: delivery.Linear, Delay: 100 * time.Millisecond, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := time.Now().Add(-time.Second)
	deadLetter := func(target string, e *event.Event) {
		r := &kafkasource.Retrier{Sender: kafkasource.NewSender(), Policy: policy, Target: target, DeadLetter: sinkSrv.URL + "/jobflow/dead-letter-sink"}
		if out, _ := r.Deliver(ctx, e); out != kafkasource.DeadLettered {
			t.Fatalf("%s: %v, want dead_lettered", e.ID(), out)
		}
	}
	for i, id := range []string{"a", "b", "c"} {
		typ := "dev.jobflow.job.created"
		if i == 2 {
			typ = "dev.jobflow.job.row"
		}
		target := proc.URL
		if i == 2 {
			target = pg.URL
		}
		deadLetter(target, newEvent(id, typ))
	}

	src := dlq.Source{Brokers: brokers, Topics: []string{topic}}
	all, err := dlq.Read(ctx, src, dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("read %d letters, want 3", len(all))
	}
	for _, l := range all {
		if l.Status != 400 || !strings.Contains(l.AnswerText(), "sleep -1 ms") || l.Time.Before(before) {
			t.Errorf("letter %s: status %d answer %q time %s", l.Ref, l.Status, l.AnswerText(), l.Time)
		}
		if o := l.Original(); o.Extensions()[dlq.ExtCode] != nil || o.Extensions()["partitionkey"] != l.Event.ID() {
			t.Errorf("letter %s: original keeps %v", l.Ref, o.Extensions())
		}
	}
	toPG, err := dlq.Read(ctx, src, dlq.Filter{Destination: pg.URL}, 0)
	if err != nil || len(toPG) != 1 || toPG[0].Event.ID() != "c" || toPG[0].Destination != pg.URL {
		t.Fatalf("filter by destination: %v %v", toPG, err)
	}
	if got, _ := dlq.Read(ctx, src, dlq.Filter{Type: "dev.jobflow.job.created"}, 0); len(got) != 2 {
		t.Fatalf("filter by type: %d letters, want 2", len(got))
	}
	if got, _ := dlq.Read(ctx, src, dlq.Filter{Since: time.Now().Add(time.Hour)}, 0); len(got) != 0 {
		t.Fatalf("filter by time: %d letters, want 0", len(got))
	}
	if got, _ := dlq.Read(ctx, src, dlq.Filter{Refs: []dlq.Ref{all[1].Ref}}, 0); len(got) != 1 || got[0].Ref != all[1].Ref {
		t.Fatalf("filter by ref: %v", got)
	}
	if ref, err := dlq.ParseRef(all[1].Ref.String()); err != nil || ref != all[1].Ref {
		t.Fatalf("ParseRef(%s) = %v %v", all[1].Ref, ref, err)
	}

	r, err := dlq.NewRedriver(brokers, policy)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The processor still refuses: the redriven letters come back.
	procLetters, _ := dlq.Read(ctx, src, dlq.Filter{Destination: proc.URL}, 0)
	for _, l := range procLetters {
		res, err := r.Redrive(ctx, l)
		if err != nil || res.Outcome != dlq.DeadLettered || res.NewLetter == nil || res.Status != 400 {
			t.Fatalf("redrive %s to a refusing destination: %+v %v", l.Ref, res, err)
		}
	}
	again, _ := dlq.Read(ctx, src, dlq.Filter{Destination: proc.URL}, 0)
	if len(again) != 4 {
		t.Fatalf("%d letters for the processor after a failed redrive, want 4 (2 + 2 back)", len(again))
	}
	var back []dlq.Letter
	for _, l := range again {
		if l.RedriveOf != "" {
			back = append(back, l)
		}
	}
	if len(back) != 2 || back[0].Status != 400 || back[0].Event.ID() != procLetters[0].Event.ID() && back[0].Event.ID() != procLetters[1].Event.ID() {
		t.Fatalf("letters written back: %+v", back)
	}
	// Now it takes them: the ones written back are delivered as they were sent.
	procRecipient.set(false)
	pgRecipient.set(false)
	for _, l := range append(back, toPG...) {
		if res, err := r.Redrive(ctx, l); err != nil || res.Outcome != dlq.Delivered {
			t.Fatalf("redrive %s: %+v %v", l.Ref, res, err)
		}
	}
	got := procRecipient.events()
	if len(got) != 2 {
		t.Fatalf("processor took %d events, want 2", len(got))
	}
	for _, e := range got {
		for _, ext := range []string{dlq.ExtCode, dlq.ExtDestination, dlq.ExtData, dlq.ExtRedriveOf} {
			if e.Extensions()[ext] != nil {
				t.Errorf("redriven event %s carries %s", e.ID(), ext)
			}
		}
		if e.Type() != "dev.jobflow.job.created" || !strings.Contains(string(e.Data()), `"id":"`+e.ID()+`"`) {
			t.Errorf("redriven event changed: %s", e)
		}
	}
	if len(pgRecipient.events()) != 1 {
		t.Fatalf("pgsink took %d events, want 1", len(pgRecipient.events()))
	}
	// A letter without a destination is not redriven.
	if _, err := r.Redrive(ctx, dlq.Letter{Ref: all[0].Ref, Event: all[0].Event}); err == nil {
		t.Fatal("a letter without destination was redriven")
	}
}

// A destination that never answers: retried by the policy, then written
// back with status 0.
func TestRedriveUnreachable(t *testing.T) {
	const topic = "dead-letter-topic"
	brokers := testenv.Kafka(t, 1, topic)
	r, err := dlq.NewRedriver(brokers, delivery.Policy{Retry: 2, Backoff: delivery.Linear, Delay: 100 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l := dlq.Letter{Ref: dlq.Ref{Topic: topic, Partition: 0, Offset: 41}, Destination: "http://127.0.0.1:1/", Event: *newEvent("z", "t")}
	res, err := r.Redrive(context.Background(), l)
	if err != nil || res.Outcome != dlq.DeadLettered || res.Status != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	got, err := dlq.Read(context.Background(), dlq.Source{Brokers: brokers, Topics: []string{topic}}, dlq.Filter{}, 0)
	if err != nil || len(got) != 1 || got[0].RedriveOf != l.Ref.String() || got[0].Destination != l.Destination || got[0].Event.ID() != "z" {
		t.Fatalf("written back: %+v %v", got, err)
	}
}

// The repository's dead-letter sinks are found from its manifests.
func TestTopicsOfTheRepository(t *testing.T) {
	top, err := manifest.Load(testenv.RootDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := dlq.Topics(top); len(got) != 1 || got[0] != "dead-letter-topic" {
		t.Fatalf("dead-letter topics %v, want [dead-letter-topic]", got)
	}
}
