package client

import (
	"strings"
	"testing"
)

func TestReadEventsFollowsTheFormat(t *testing.T) {
	stream := "retry: 1000\n\n: a comment\nevent: change\nid: 7\ndata: {\"a\":\ndata: 1}\n\ndata: plain\n\n"
	var got []Event
	if err := ReadEvents(strings.NewReader(stream), func(e Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Event{Name: "change", ID: "7", Data: "{\"a\":\n1}"}) || got[1] != (Event{Name: "message", Data: "plain"}) {
		t.Fatalf("%+v", got)
	}
}
