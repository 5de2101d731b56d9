package client

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A starting function waits for its first values while the service is
// reachable (here: it holds the request), but not for a service that is
// not there (the connection is refused), and not at all without a URL.
func TestSettledWaitsOnlyForAServiceThatAnswers(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hold := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hold }))
	defer slow.Close()
	defer close(hold)
	waiting := New(Options{URL: slow.URL, Keys: []string{"k"}, Log: quiet}).Start()
	defer waiting.Stop()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	absent := New(Options{URL: gone, Keys: []string{"k"}, Log: quiet, MinBackoff: time.Hour, MaxBackoff: time.Hour}).Start()
	defer absent.Stop()

	none := New(Options{Keys: []string{"k"}}).Start()
	defer none.Stop()
	if !none.Settled(time.Hour) {
		t.Error("without a URL: not settled")
	}
	deadline := time.Now().Add(20 * time.Second)
	for !absent.Settled(time.Hour) {
		if time.Now().After(deadline) {
			t.Fatal("still waiting for a service that refused the connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if waiting.Settled(time.Hour) {
		t.Fatal("settled while the service holds the first request and the wait is not over")
	}
	if !waiting.Settled(100 * time.Millisecond) {
		t.Fatal("not settled once the wait is over")
	}
}
