package pingsource

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

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// httpSender is one binary-mode POST, as the engine's sender makes it.
type httpSender struct{}

func (httpSender) Send(ctx context.Context, target string, e *event.Event, timeout time.Duration) delivery.Attempt {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return delivery.Attempt{Status: 400, Err: err}
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(e), req); err != nil {
		return delivery.Attempt{Status: 400, Err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return delivery.Failed(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return delivery.Attempt{Status: resp.StatusCode}
}

type received struct {
	at time.Time
	e  event.Event
}

// sink records the events it receives.
func sink(t *testing.T, status int) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var got []received
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			t.Errorf("not a CloudEvent: %v", err)
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got = append(got, received{at: time.Now(), e: *e})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

func run(t *testing.T, pings []Ping) (*Runner, context.CancelFunc) {
	r, err := New(pings, httpSender{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, cancel
}

func TestPingFiresOnScheduleWithKnativesAttributes(t *testing.T) {
	s, got := sink(t, 202)
	start := time.Now()
	run(t, []Ping{{Spec: Spec{Namespace: "ns", Name: "tick", Schedule: "* * * * * *", ContentType: "application/json", Data: `{"hello":"world"}`}, Sink: s.URL}})
	deadline := time.Now().Add(10 * time.Second)
	for len(got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	evs := got()
	if len(evs) < 3 {
		t.Fatalf("%d pings in 10 s of a schedule of every second", len(evs))
	}
	ids := map[string]bool{}
	for _, r := range evs {
		e := r.e
		if e.Type() != EventType || e.Source() != "/apis/v1/namespaces/ns/pingsources/tick" || e.DataContentType() != "application/json" || string(e.Data()) != `{"hello":"world"}` {
			t.Fatalf("ping event: %s", e)
		}
		ids[e.ID()] = true
		// Every tick is on a whole second; the ping arrives within 1 s of it.
		tick := r.at.Truncate(time.Second)
		if late := r.at.Sub(tick); late > time.Second || tick.Before(start.Truncate(time.Second)) {
			t.Errorf("ping at %s: %s after its tick", r.at.Format(time.StampMilli), late)
		}
	}
	if len(ids) != len(evs) {
		t.Fatalf("every tick must have its own id: %d ids for %d pings", len(ids), len(evs))
	}
}

func TestMissedTicksAreNotFiredLate(t *testing.T) {
	s, got := sink(t, 202)
	r, err := New([]Ping{{Spec: Spec{Namespace: "ns", Name: "late", Schedule: "* * * * * *"}, Sink: s.URL}}, httpSender{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // "the engine was down" for two ticks or more
	ctx, cancel := context.WithCancel(context.Background())
	started := time.Now()
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	evs := got()
	if len(evs) == 0 || len(evs) > 2 {
		t.Fatalf("%d pings in 1.5 s after a start (want 1 or 2: none for the ticks before it)", len(evs))
	}
	for _, e := range evs {
		if e.e.Time().Before(started) {
			t.Fatalf("a ping of %s, before the start at %s", e.e.Time(), started)
		}
	}
	if len(evs[0].e.Data()) != 0 || evs[0].e.DataContentType() != "" {
		t.Fatalf("a ping without data has neither data nor a content type: %s", evs[0].e)
	}
	if st := r.Stats()["late"]; st.Fired != int64(len(evs)) || st.Delivered != int64(len(evs)) {
		t.Fatalf("stats %+v for %d pings", st, len(evs))
	}
}

func TestARefusedPingIsDroppedAfterItsRetries(t *testing.T) {
	s, got := sink(t, 400) // final: not retried
	r, _ := run(t, []Ping{{Spec: Spec{Namespace: "ns", Name: "refused", Schedule: "* * * * * *", DataBase64: "aGk="}, Sink: s.URL}})
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats()["refused"].Dropped == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	st := r.Stats()["refused"]
	if st.Dropped == 0 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
	if string(got()[0].e.Data()) != "hi" {
		t.Fatalf("dataBase64 is sent decoded: %q", got()[0].e.Data())
	}
}

func TestSpecsAreCheckedAsKnativeChecksThem(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		err  string
	}{
		{Spec{Schedule: "@every 1m"}, "@every"},
		{Spec{Schedule: "not a schedule"}, "schedule"},
		{Spec{Schedule: "* * * * *", Timezone: "Mars/Olympus"}, "timezone"},
		{Spec{Data: "a", DataBase64: "YQ=="}, "both"},
		{Spec{DataBase64: "%%%"}, "dataBase64"},
		{Spec{ContentType: "application/json", Data: "[1,2]"}, "JSON object"},
	} {
		_, _, err := c.spec.Check()
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %v, want an error about %q", c.spec, err, c.err)
		}
	}
	for _, ok := range []Spec{
		{},
		{Schedule: "*/2 * * * *", Timezone: "Europe/Madrid"},
		{Schedule: "@hourly"},
		{Schedule: "30 * * * * *", ContentType: "application/json", Data: `{"a":1}`},
	} {
		if _, _, err := ok.Check(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	if _, err := New([]Ping{{Spec: Spec{Name: "bad", Schedule: "@every 1s"}}}, httpSender{}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "pingsource bad") {
		t.Fatalf("New must refuse a bad spec and name it: %v", err)
	}
}
