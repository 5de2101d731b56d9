package engine

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// POST /replay pauses a running source, moves its group and resumes it:
// every record is delivered again.
func TestAdminReplay(t *testing.T) {
	brokers := testenv.Kafka(t, 2, "in")
	p := testenv.Producer(t, brokers)
	for i := range 8 {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "in", Partition: int32(i % 2), Value: sarama.StringEncoder("v")}); err != nil {
			t.Fatal(err)
		}
	}
	var took atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { took.Add(1) }))
	defer sink.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := kafkasource.New(kafkasource.Config{Name: "in-source", Namespace: "t", Brokers: brokers, Topics: []string{"in"},
		Group: "in-group", InitialOffset: "earliest", CommitInterval: 100 * time.Millisecond,
		Retrier: kafkasource.Retrier{Policy: delivery.Policy{Retry: 1, Backoff: delivery.Linear, Delay: 100 * time.Millisecond, Timeout: 5 * time.Second}, Target: sink.URL},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = src.Run(ctx) }()
	e := New(Config{}, log, io.Discard)
	e.sources = append(e.sources, src)
	admin := httptest.NewServer(http.HandlerFunc(e.serveReplay))
	defer admin.Close()
	waitFor := func(n int64) {
		deadline := time.Now().Add(60 * time.Second)
		for took.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("sink took %d, want %d", took.Load(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(8)
	time.Sleep(500 * time.Millisecond) // let the commit of the last records happen
	post := func(body string) (int, string) {
		resp, err := http.Post(admin.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post(`{"name":"in-source","beginning":true}`)
	if code != 200 {
		t.Fatalf("replay: %d %s", code, body)
	}
	var ans ReplayAnswer
	if err := json.Unmarshal([]byte(body), &ans); err != nil || len(ans.Moves) != 2 || ans.Moves[0].To != 0 || ans.Group != "in-group" {
		t.Fatalf("replay answer %s: %v", body, err)
	}
	waitFor(16)
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"name":"nope","beginning":true}`, 404},
		{`{"name":"in-source"}`, 400},
		{`{"name":"in-source","beginning":true,"offset":3}`, 400},
		{`{"name":"in-source","colour":"blue"}`, 400},
	} {
		if code, body := post(c.body); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.body, code, body, c.code)
		}
	}
}
