package receiver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/pkg/config/change"
	"github.com/jobflow/jobflow/pkg/config/store"
	"github.com/jobflow/jobflow/pkg/config/subscribe"
)

// startReceiver starts the receiver function with RECEIVER_MAX_SLEEP 1s and
// RECEIVER_MAX_DATA_SIZE 1000, its K_SINK a server taking every event, and
// JOBFLOW_CONFIG_URL configURL; it answers POST /create/job with body.
func startReceiver(t *testing.T, configURL string) func(body string) int {
	t.Helper()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	t.Cleanup(sink.Close)
	t.Setenv("K_SINK", sink.URL)
	t.Setenv("RECEIVER_MAX_SLEEP", "1s")
	t.Setenv("RECEIVER_MAX_DATA_SIZE", "1000")
	t.Setenv("JOBFLOW_CONFIG_URL", configURL)
	t.Setenv("JOBFLOW_CONFIG_CACHE", "")
	f := NewFunction()
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	waitUntil(t, func() bool { ok, _ := f.Ready(context.Background()); return ok }, "the receiver ready")
	return func(body string) int {
		w := httptest.NewRecorder()
		f.Handle(w, httptest.NewRequest(http.MethodPost, CreatePath, strings.NewReader(body)))
		return w.Code
	}
}

// The limits follow the configuration service while the receiver runs:
// the environment's values until the first update, the service's after;
// a value the check refuses keeps the previous one, and a deleted key
// brings the environment's value back.
func TestLimitsChangeLiveWithoutARestart(t *testing.T) {
	table := store.NewTable(100)
	table.MarkReady()
	srv := httptest.NewServer(subscribe.NewService(subscribe.Config{Heartbeat: time.Hour, WriteTimeout: 5 * time.Second}, table))
	t.Cleanup(srv.Close) // after the receiver's Stop, which ends its subscription
	create := startReceiver(t, srv.URL)

	if code := create(`{"sleep":1500}`); code != http.StatusBadRequest {
		t.Fatalf("1.5 s under the environment's 1 s: %d, want 400", code)
	}
	seq := int64(0)
	set := func(key, v string) {
		seq++
		c := &change.Change{Key: key, Value: json.RawMessage(v), Revision: "r" + v}
		if v == "" {
			c.Value, c.Deleted = nil, true
		}
		table.Apply(seq, c)
	}
	set(LiveMaxSleep, `"2s"`)
	waitUntil(t, func() bool { return create(`{"sleep":1500}`) == http.StatusOK }, "1.5 s taken once max-sleep is 2s")
	set(LiveMaxSleep, `"-5s"`) // refused by the check: 2s stays
	set(LiveMaxSleep, `"soon"`)
	set(LiveMaxDataSize, `10`)
	waitUntil(t, func() bool { return create(`{"data_size":11}`) == http.StatusBadRequest }, "11 bytes refused once max-data-size is 10")
	if code := create(`{"sleep":1500}`); code != http.StatusOK {
		t.Fatalf("a refused value replaced the good one: 1.5 s answered %d", code)
	}
	set(LiveMaxDataSize, `"lots"`) // not an integer: 10 stays
	set(LiveMaxSleep, ``)          // deleted: the environment's 1s again
	waitUntil(t, func() bool { return create(`{"sleep":1500}`) == http.StatusBadRequest }, "1.5 s refused again once max-sleep is deleted")
	if code := create(`{"data_size":11}`); code != http.StatusBadRequest {
		t.Fatalf("data_size 11 after a refused max-data-size: %d, want 400", code)
	}
}

// Without a configuration service the environment's limits hold and the
// receiver is ready at once.
func TestLimitsWithoutAServiceAreTheEnvironments(t *testing.T) {
	create := startReceiver(t, "")
	if a, b := create(`{"sleep":1000,"data_size":1000}`), create(`{"sleep":1001}`); a != http.StatusOK || b != http.StatusBadRequest {
		t.Fatalf("at the limits %d, over %d; want 200 and 400", a, b)
	}
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
