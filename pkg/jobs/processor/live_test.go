package processor

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jobflow/jobflow/pkg/config/change"
	"github.com/jobflow/jobflow/pkg/config/client"
	"github.com/jobflow/jobflow/pkg/config/store"
	"github.com/jobflow/jobflow/pkg/config/subscribe"
	"github.com/jobflow/jobflow/pkg/jobs/job"
)

// The limits follow the configuration service while the processor runs:
// the environment's value until the first update, the service's after, and
// a value the check refuses keeps the previous one.
func TestLimitsChangeLiveWithoutARestart(t *testing.T) {
	table := store.NewTable(100)
	table.MarkReady()
	srv := httptest.NewServer(subscribe.NewService(subscribe.Config{Heartbeat: time.Hour, WriteTimeout: 5 * time.Second}, table))
	defer srv.Close()
	var slept time.Duration
	p := newProcessor(&slept) // MaxSleep 1s from the environment
	p.Live = NewLive(client.New(client.Options{URL: srv.URL, Keys: []string{"jobs/processor/*"}}), p.Config)
	if err := p.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())

	outcome := func(sleep int64) string {
		j := created(t, sleep, 10)
		in, _ := job.NewEvent(job.TypeCreated, "/r", j.ID.String(), j)
		outs, err := p.Handle(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return outs[0].Event.Type()
	}
	if outcome(1500) != job.TypeFailed {
		t.Fatal("1.5 s must fail under the environment's 1 s")
	}
	set := func(seq int64, v string) {
		table.Apply(seq, &change.Change{Key: LiveMaxSleep, Value: json.RawMessage(v), Revision: "r" + v})
	}
	set(1, `"2s"`)
	waitUntil(t, func() bool { return outcome(1500) == job.TypeFinished }, "1.5 s allowed once max-sleep is 2s")
	set(2, `"-5s"`) // refused by the check: 2s stays
	set(3, `"not a duration"`)
	time.Sleep(200 * time.Millisecond)
	if outcome(1500) != job.TypeFinished {
		t.Fatal("a refused value replaced the good one")
	}
	set(4, `"1ms"`)
	waitUntil(t, func() bool { return outcome(5) == job.TypeFailed }, "5 ms refused once max-sleep is 1ms")
}

func waitUntil(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
