package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testConsole(t *testing.T, sample func() Sample, redrive Redriver) *httptest.Server {
	t.Helper()
	c := New(Config{Plan: repositoryPlan(t), Brokers: []string{"127.0.0.1:1"}, Sample: sample, Interval: 50 * time.Millisecond, Redrive: redrive})
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); c.Close() })
	return srv
}

// The page and its files are served from the binary.
func TestPageIsServed(t *testing.T) {
	srv := testConsole(t, func() Sample { return Sample{} }, nil)
	for path, want := range map[string]string{"/": "<title>jobflow console</title>", "/console/console.js": "EventSource", "/console/console.css": "svg"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(b.String(), want) {
			t.Errorf("%s: %d, no %q", path, resp.StatusCode, want)
		}
	}
	if resp, _ := http.Get(srv.URL + "/nothing-here"); resp.StatusCode != 404 {
		t.Errorf("/nothing-here: %d", resp.StatusCode)
	}
}

// Bad requests get a 4xx with a reason, before Kafka is asked.
func TestBadRequestsAreRefusedWithAReason(t *testing.T) {
	srv := testConsole(t, func() Sample { return Sample{} }, func(context.Context, []RecordID) (RedriveResult, error) {
		t.Error("redrive called")
		return RedriveResult{}, nil
	})
	cases := []struct {
		method, path, body string
		status             int
		reason             string
	}{
		{"GET", "/api/console/topics/no-such-topic", "", 404, "no topic"},
		{"GET", "/api/console/topics/receiver-topic?limit=0", "", 400, "limit"},
		{"GET", "/api/console/topics/receiver-topic?limit=x", "", 400, "limit"},
		{"GET", "/api/console/lookup?id=ab", "", 400, "id"},
		{"GET", "/api/console/trace?id=ab", "", 400, "id"},
		{"GET", "/api/console/trace?id=job-1", "", 404, "keeps no traces"},
		{"POST", "/api/console/dead-letters/redrive", `{"records":[{"topic":"receiver-topic","partition":0,"offset":1}]}`, 400, "not a dead-letter topic"},
		{"POST", "/api/console/dead-letters/redrive", `{"records":[]}`, 400, "none"},
		{"POST", "/api/console/dead-letters/redrive", `{"refs":[]}`, 400, "unknown field"},
		{"GET", "/api/console/dead-letters/redrive", "", 405, ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ans struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(ans.Error, c.reason) {
			t.Errorf("%s %s: %d %q; want %d with %q", c.method, c.path, resp.StatusCode, ans.Error, c.status, c.reason)
		}
	}
}

// One sampler serves every page; frames carry rates; nothing is sampled
// once no page listens.
func TestStreamPushesFramesFromOneSampler(t *testing.T) {
	var samples, delivered atomic.Int64
	srv := testConsole(t, func() Sample {
		samples.Add(1)
		return Sample{Status: map[string]any{"ok": true}, Counts: map[string]int64{"source/a/delivered": delivered.Add(5)}}
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	frames := make(chan frame, 100)
	for range 5 {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/console/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					var f frame
					if json.Unmarshal([]byte(data), &f) == nil {
						frames <- f
					}
				}
			}
		}()
	}
	var got []frame
	for len(got) < 25 {
		select {
		case f := <-frames:
			got = append(got, f)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d frames in 10s", len(got))
		}
	}
	cancel()
	rated := false
	for _, f := range got {
		rated = rated || f.Rates["source/a/delivered"] > 0
	}
	if !rated {
		t.Errorf("no frame with a rate: %+v", got)
	}
	// Five pages, about one sample per interval (not five).
	n := samples.Load()
	time.Sleep(300 * time.Millisecond)
	after := samples.Load()
	time.Sleep(300 * time.Millisecond)
	if samples.Load() != after {
		t.Errorf("still sampling with no page open: %d then %d", after, samples.Load())
	}
	if n > 5+int64(len(got)) {
		t.Errorf("%d samples for %d frames to 5 pages: one sampler should serve them all", n, len(got))
	}
}
