package source_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/browsertest"
	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/config/client"
	"github.com/jobflow/jobflow/pkg/config/gitsource"
	"github.com/jobflow/jobflow/pkg/config/source"
	"github.com/jobflow/jobflow/pkg/config/subscribe"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// flow is config-source and config-subscribe on a real broker, reading a
// real Git repository that the test pushes to.
type flow struct {
	t               testing.TB
	work            string    // a clone to push from
	source, service string    // the functions' URLs
	pushedAt        time.Time // when the last git push started
}

func git(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func serve(t testing.TB, name string, f any) string {
	t.Helper()
	port := testenv.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := fn.RuntimeConfig{ListenAddress: fmt.Sprintf("127.0.0.1:%d", port), MaxBodyBytes: 1 << 20}
	go func() { done <- fn.Serve(ctx, name, f, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	u := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(u + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return u
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newFlow(t testing.TB, files map[string]string, retain int) *flow {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	brokers := testenv.Kafka(t, 1, "config-changes")
	in, err := kafkasink.New(brokers, []kafkasink.Sink{{Namespace: "jobflow", Name: "config-sink", Topic: "config-changes"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sink := httptest.NewServer(in)
	t.Cleanup(func() { sink.Close(); in.Close() })

	seed := t.TempDir()
	writeFiles(t, seed, files)
	bare := filepath.Join(t.TempDir(), "config.git")
	if _, err := gitsource.Seed(bare, seed, "main"); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	git(t, "", "clone", "-q", bare, work)

	t.Setenv("K_SINK", sink.URL+"/jobflow/config-sink")
	t.Setenv("CONFIG_GIT_URL", bare)
	t.Setenv("CONFIG_POLL_INTERVAL", "0")
	t.Setenv("CONFIG_KAFKA_BROKERS", strings.Join(brokers, ","))
	t.Setenv("CONFIG_RETAIN", strconv.Itoa(retain))
	t.Setenv("CONFIG_HEARTBEAT", "200ms")
	return &flow{t: t, work: work, source: serve(t, "config-source", source.NewFunction()), service: serve(t, "config-subscribe", subscribe.NewFunction())}
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		_ = os.MkdirAll(filepath.Dir(full), 0o755)
		if c == "" {
			_ = os.Remove(full)
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// push commits files ("" deletes one) and sends the push webhook; it
// returns config-source's answer.
func (f *flow) push(files map[string]string) source.Result {
	f.t.Helper()
	writeFiles(f.t, f.work, files)
	git(f.t, f.work, "add", "-A")
	git(f.t, f.work, "commit", "-qm", "change")
	f.pushedAt = time.Now()
	git(f.t, f.work, "push", "-q", "origin", "main")
	resp, err := http.Post(f.source+source.WebhookPath, "application/json", strings.NewReader(`{"ref":"refs/heads/main","after":"x"}`))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		f.t.Fatalf("webhook: %s %s", resp.Status, body)
	}
	var r source.Result
	if err := json.Unmarshal(body, &r); err != nil {
		f.t.Fatal(err)
	}
	return r
}

type sseEvent struct {
	client.Event
	Key, Revision, Previous string
	Value                   json.RawMessage
	Deleted                 bool
}

// stream is one SSE subscription read in the background.
type stream struct {
	events chan sseEvent
	cancel context.CancelFunc
}

func (f *flow) subscribe(keys string, lastID int64) *stream {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.service+"/subscribe?keys="+keys, nil)
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		f.t.Fatalf("subscribe: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &stream{events: make(chan sseEvent, 1000), cancel: cancel}
	f.t.Cleanup(cancel)
	go func() {
		defer resp.Body.Close()
		_ = client.ReadEvents(bufio.NewReader(resp.Body), func(ev client.Event) error {
			e := sseEvent{Event: ev}
			var d struct {
				Key, Revision string
				Previous      string `json:"previous_revision"`
				Value         json.RawMessage
				Deleted       bool
			}
			_ = json.Unmarshal([]byte(ev.Data), &d)
			e.Key, e.Revision, e.Previous, e.Value, e.Deleted = d.Key, d.Revision, d.Previous, d.Value, d.Deleted
			s.events <- e
			return nil
		})
		close(s.events)
	}()
	return s
}

// holds waits until config-subscribe's snapshot of every key has n values.
func (f *flow) holds(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := f.subscribe("*", 0)
		snap := all.until(t, "ready")
		all.cancel()
		if len(snap)-1 == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service holds %s, want %d values", names(snap), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// until reads events (skipping heartbeats) up to the first of kind stop.
func (s *stream) until(t testing.TB, stop string) []sseEvent {
	t.Helper()
	var got []sseEvent
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatalf("stream ended after %+v", got)
			}
			if e.Name == "heartbeat" {
				continue
			}
			got = append(got, e)
			if e.Name == stop {
				return got
			}
		case <-timeout:
			t.Fatalf("no %s event; got %+v", stop, got)
		}
	}
}

func names(es []sseEvent) string {
	var out []string
	for _, e := range es {
		s := e.Name
		if e.Key != "" {
			s += ":" + e.Key + "=" + string(e.Value)
			if e.Deleted {
				s += "(deleted)"
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestPushSubscribeResumeAndReset(t *testing.T) {
	f := newFlow(t, map[string]string{
		"jobs/processor/max-sleep.json":        `"30s"`,
		"jobs/processor/max-sleep.schema.json": `{"type":"string","pattern":"^[0-9]+(ms|s|m)$"}`,
		"jobs/receiver/limits.yaml":            "max_sleep: 10s\n",
		"other.json":                           `1`,
	}, 3)
	first := f.push(map[string]string{"README.md": "hello"}) // the seed itself is the first sync
	if len(first.Changed) != 3 {
		t.Fatalf("first sync: %+v", first)
	}

	f.holds(t, 3) // the service may apply the seed's records one by one: take the snapshot after the last
	sub := f.subscribe("jobs/*", 0)
	snap := sub.until(t, "ready")
	if got := names(snap); got != `value:jobs/processor/max-sleep="30s" value:jobs/receiver/limits={"max_sleep":"10s"} ready` {
		t.Fatalf("snapshot: %s", got)
	}
	readyID, _ := strconv.ParseInt(snap[len(snap)-1].ID, 10, 64)

	// A change: one event with its revision and the previous one.
	res := f.push(map[string]string{"jobs/processor/max-sleep.json": `"5s"`})
	ch := sub.until(t, "change")
	if len(ch) != 1 || ch[0].Key != "jobs/processor/max-sleep" || string(ch[0].Value) != `"5s"` ||
		ch[0].Revision != res.Revision || ch[0].Previous != first.Revision || ch[0].ID == "" {
		t.Fatalf("change %+v (push %+v, first %s)", ch, res, first.Revision)
	}
	changeID, _ := strconv.ParseInt(ch[0].ID, 10, 64)

	// An invalid value is refused with its reason, the rest of the commit applies.
	res = f.push(map[string]string{"jobs/processor/max-sleep.json": `"soon"`, "jobs/receiver/limits.yaml": "max_sleep: 1s\n"})
	if !strings.Contains(res.Refused["jobs/processor/max-sleep"], "schema") || len(res.Changed) != 1 {
		t.Fatalf("refusal: %+v", res)
	}
	ch = sub.until(t, "change")
	if ch[0].Key != "jobs/receiver/limits" {
		t.Fatalf("after a refusal: %+v", ch)
	}

	// A key deleted: an event (the topic's tombstone).
	f.push(map[string]string{"jobs/receiver/limits.yaml": ""})
	if ch = sub.until(t, "change"); !ch[0].Deleted || ch[0].Key != "jobs/receiver/limits" {
		t.Fatalf("deletion: %+v", ch)
	}

	// Resume from the snapshot's id: exactly the three changes since, no values again.
	re := f.subscribe("jobs/*", readyID)
	got := names(re.until(t, "ready"))
	if got != `change:jobs/processor/max-sleep="5s" change:jobs/receiver/limits={"max_sleep":"1s"} change:jobs/receiver/limits=(deleted) ready` {
		t.Fatalf("resume from %d: %s", readyID, got)
	}
	re.cancel()
	if got := names(f.subscribe("jobs/*", changeID).until(t, "ready")); !strings.HasPrefix(got, `change:jobs/receiver/limits={"max_sleep":"1s"} `) {
		t.Fatalf("resume from %d: %s", changeID, got)
	}

	// Three more changes: the table keeps 3, so a resume from the snapshot's id is a reset.
	for i := 2; i <= 4; i++ {
		f.push(map[string]string{"other.json": strconv.Itoa(i)})
	}
	got = names(f.subscribe("jobs/*", readyID).until(t, "ready"))
	if !strings.HasPrefix(got, "reset ") || !strings.HasSuffix(got, `value:jobs/processor/max-sleep="5s" ready`) {
		t.Fatalf("resume beyond retention: %s", got)
	}
	// The live subscriber saw only its keys: nothing of other.json.
	select {
	case e := <-sub.events:
		if e.Name != "heartbeat" {
			t.Fatalf("unexpected %+v", e)
		}
	case <-time.After(300 * time.Millisecond):
	}
	// Bad requests are 400s with a reason.
	for _, q := range []string{"/subscribe", "/subscribe?keys=a&since=x", "/subscribe?keys=a*b*"} {
		resp, err := http.Get(f.service + q)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("%s: %v %v", q, resp.Status, err)
		}
		resp.Body.Close()
	}
}

func TestAFunctionsValueChangesLiveAndKeepsTheLastGoodOne(t *testing.T) {
	f := newFlow(t, map[string]string{"jobs/processor/max-sleep.json": `"30s"`}, 100)
	f.push(map[string]string{"README.md": "x"})
	cache := filepath.Join(t.TempDir(), "config.json")
	c := client.New(client.Options{URL: f.service, Keys: []string{"jobs/processor/*"}, CacheFile: cache})
	maxSleep := client.Bind(c, "jobs/processor/max-sleep", 10*time.Second, func(d time.Duration) error {
		if d <= 0 {
			return fmt.Errorf("max-sleep %s: want > 0", d)
		}
		return nil
	})
	if maxSleep.Load() != 10*time.Second {
		t.Fatalf("default before the first value: %s", maxSleep.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	eventually(t, func() bool { return maxSleep.Load() == 30*time.Second }, "first value 30s")
	f.push(map[string]string{"jobs/processor/max-sleep.json": `"2s"`})
	eventually(t, func() bool { return maxSleep.Load() == 2*time.Second }, "2s after the push")
	f.push(map[string]string{"jobs/processor/max-sleep.json": `"-1s"`}) // the client's check refuses it
	f.push(map[string]string{"README.md": "y"})
	time.Sleep(300 * time.Millisecond)
	if maxSleep.Load() != 2*time.Second {
		t.Fatalf("a refused value replaced the good one: %s", maxSleep.Load())
	}
	f.push(map[string]string{"jobs/processor/max-sleep.json": ""})
	eventually(t, func() bool { return maxSleep.Load() == 10*time.Second }, "the default after a deletion")

	// Last-known-good: a new client with the cache and no service has the values at once.
	f.push(map[string]string{"jobs/processor/max-sleep.json": `"3s"`})
	eventually(t, func() bool { return maxSleep.Load() == 3*time.Second }, "3s")
	eventually(t, func() bool { b, _ := os.ReadFile(cache); return strings.Contains(string(b), `"3s"`) }, "cache written")
	offline := client.New(client.Options{URL: "", Keys: []string{"jobs/processor/*"}, CacheFile: cache})
	if v := client.Bind(offline, "jobs/processor/max-sleep", time.Second, nil); v.Load() != 3*time.Second {
		t.Fatalf("last-known-good: %s", v.Load())
	}
}

func eventually(t testing.TB, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The page in a real browser: it shows a key's value, and a git push
// changes it on the page live.
func TestThePageShowsAPushedChangeLive(t *testing.T) {
	f := newFlow(t, map[string]string{"jobs/processor/max-sleep.json": `"30s"`}, 100)
	f.push(map[string]string{"README.md": "x"})
	b := browsertest.New(t, 90*time.Second)
	if err := b.Navigate(f.service + "/?key=jobs/processor/max-sleep"); err != nil {
		t.Fatal(err)
	}
	const value = `document.getElementById("value").textContent`
	if err := b.WaitFor(value+` === '"30s"' && document.getElementById("state").textContent === "live"`, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	res := f.push(map[string]string{"jobs/processor/max-sleep.json": `"750ms"`})
	if err := b.WaitFor(value+` === '"750ms"'`, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	log, err := b.Text("#log")
	if err != nil || !strings.Contains(log, `jobs/processor/max-sleep = "750ms" @ `+res.Revision[:12]) {
		t.Fatalf("change log %q (%v)", log, err)
	}
	if rev, _ := b.Text("#revision"); rev != res.Revision[:12] {
		t.Errorf("revision shown %q, want %s", rev, res.Revision[:12])
	}
	b.NoProblems(t)
}

// BenchmarkGitPushToSubscriber: from git push (and its webhook) to a
// subscriber's receipt of the change, through config-source, the KafkaSink
// ingress, the broker and config-subscribe.
func BenchmarkGitPushToSubscriber(b *testing.B) {
	f := newFlow(b, map[string]string{"k.json": "0"}, 100)
	f.push(map[string]string{"README.md": "x"})
	sub := f.subscribe("k", 0)
	sub.until(b, "ready")
	var ds []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		f.push(map[string]string{"k.json": strconv.Itoa(i)})
		sub.until(b, "change")
		ds = append(ds, time.Since(f.pushedAt))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "ms-p99")
	b.Logf("git push → subscriber, %d pushes: p50 %s, max %s (from the start of git push: the push, the webhook, the sync, Kafka, the subscription)",
		len(ds), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
}
