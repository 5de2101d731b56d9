package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/dlq"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// list, show and redrive over a real broker: a letter whose destination
// now takes it is delivered once; the command says so.
func TestDLQCommand(t *testing.T) {
	const topic = "dead-letter-topic"
	brokers := testenv.Kafka(t, 1, topic)
	var refusing atomic.Bool
	var took atomic.Int32
	refusing.Store(true)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refusing.Load() {
			http.Error(w, "no such user 42", http.StatusBadRequest)
			return
		}
		took.Add(1)
	}))
	defer dest.Close()
	// Make a letter: a redrive to a refusing destination writes one.
	r, err := dlq.NewRedriver(brokers, delivery.Policy{Retry: 0, Backoff: delivery.Linear, Delay: 100 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetID("m1")
	e.SetSource("/dialogs")
	e.SetType("dev.jobflow.test")
	if _, err := r.Redrive(context.Background(), dlq.Letter{Ref: dlq.Ref{Topic: topic}, Destination: dest.URL, Event: e}); err != nil {
		t.Fatal(err)
	}
	r.Close()

	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runDLQ(context.Background(), append(args, "--brokers", strings.Join(brokers, ","), "--topic", topic), &out)
		return out.String(), err
	}
	out, err := run("list")
	if err != nil || !strings.Contains(out, topic+"/0/0") || !strings.Contains(out, "no such user 42") || !strings.Contains(out, "400") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, _ = run("list", "--type", "other"); strings.Contains(out, topic+"/0/0") {
		t.Fatalf("list --type other shows the letter:\n%s", out)
	}
	out, err = run("show", topic+"/0/0")
	if err != nil || !strings.Contains(out, `"answer": "no such user 42`) || !strings.Contains(out, `"destination": "`+dest.URL) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, err = run("redrive"); err == nil {
		t.Fatal("redrive without letters or --all ran")
	}
	args := []string{"redrive", topic + "/0/0", "--retry", "0", "--backoff-delay", "PT0.1S"}
	if out, err = run(args...); !errors.Is(err, errPartial) || !strings.Contains(out, "dead-lettered again as "+topic+"/0/1") {
		t.Fatalf("redrive to a refusing destination: %v\n%s", err, out)
	}
	refusing.Store(false)
	if out, err = run("redrive", topic+"/0/1"); err != nil || !strings.Contains(out, "delivered 1") || took.Load() != 1 {
		t.Fatalf("redrive: %v (took %d)\n%s", err, took.Load(), out)
	}
}
