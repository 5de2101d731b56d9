// Package subscribe serves subscriptions to configuration keys from a
// materialised table (package store): GET /subscribe as Server-Sent
// Events, /ws as WebSocket, and a page that shows a key live. Every
// subscription gets the current value of each matching key first, then
// every change in the topic's order, each with its sequence number (the
// SSE id); a subscriber that comes back with Last-Event-ID (or since=)
// gets exactly the changes it missed, or, when they are no longer
// retained, an explicit reset and a new snapshot: never a silent gap.
//
// Subscribers share one log of changes and each keeps only a cursor in it,
// so a slow subscriber holds no copy of the changes and slows nobody: when
// it falls out of the retained log it is resynchronised with a snapshot,
// and a write blocked past the write timeout drops its connection (its
// client resumes).
package subscribe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobflow/jobflow/pkg/config/store"
)

// The kinds of message of a subscription.
const (
	KindValue     = "value"     // a key's current value (the snapshot); no id
	KindReady     = "ready"     // end of the snapshot or of the replay: id is the head
	KindChange    = "change"    // a change; id is its sequence number
	KindReset     = "reset"     // what the client holds is void: a snapshot follows
	KindHeartbeat = "heartbeat" // keep-alive; id is the position reached
)

// Message is one message of a subscription.
type Message struct {
	Kind string
	ID   int64 // 0: none
	Data []byte
}

// Matcher says which keys a subscription wants.
type Matcher struct {
	exact    map[string]bool
	prefixes []string
}

// ParseKeys reads keys=a,b,prefix/* ('*' alone: every key).
func ParseKeys(s string) (Matcher, error) {
	m := Matcher{exact: map[string]bool{}}
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
			continue
		case strings.HasSuffix(k, "*"):
			p := strings.TrimSuffix(k, "*")
			if strings.Contains(p, "*") {
				return m, fmt.Errorf("key pattern %q: '*' only at the end", k)
			}
			m.prefixes = append(m.prefixes, p)
		default:
			m.exact[k] = true
		}
	}
	if len(m.exact) == 0 && len(m.prefixes) == 0 {
		return m, fmt.Errorf("keys: name one or more keys, comma-separated; a trailing * takes a prefix (keys=jobs/processor/*)")
	}
	return m, nil
}

// Match reports whether key is wanted.
func (m Matcher) Match(key string) bool {
	if m.exact[key] {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// ParseSince reads a resume position (Last-Event-ID or since=): empty is
// none.
func ParseSince(s string) (seq int64, ok bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	seq, err = strconv.ParseInt(s, 10, 64)
	if err != nil || seq < 0 {
		return 0, false, fmt.Errorf("resume position %q: want the id of the last event received (a number)", s)
	}
	return seq, true, nil
}

// Options of a feed.
type Options struct {
	Heartbeat time.Duration // idle keep-alive
	MaxStream time.Duration // the feed ends after this (the client resumes); 0: never
	CatchUp   time.Duration // how long a resume past this instance's head waits for it
}

// Feed runs one subscription: send is called with each batch of messages
// and must write (and flush) them; the feed ends when ctx ends, send
// fails, or MaxStream passes.
func Feed(ctx context.Context, t *store.Table, m Matcher, since int64, resume bool, o Options, send func([]Message) error) error {
	var end <-chan time.Time
	if o.MaxStream > 0 {
		timer := time.NewTimer(o.MaxStream)
		defer timer.Stop()
		end = timer.C
	}
	msgs, cursor := First(ctx, t, m, since, resume, o)
	if err := send(msgs); err != nil {
		return err
	}
	return follow(ctx, t, m, cursor, o.Heartbeat, end, send)
}

// First is what a subscription starts with, and the position it leaves
// the subscriber at: the snapshot of the matching keys, or on a resume
// the changes after since (a reset and a snapshot when they are no longer
// retained), then a ready message.
func First(ctx context.Context, t *store.Table, m Matcher, since int64, resume bool, o Options) ([]Message, int64) {
	if !resume {
		return snapshot(nil, t, m)
	}
	if since > t.Head() {
		waitHead(ctx, t, since, o.CatchUp) // another instance may be a little ahead of this one
	}
	if entries, head, ok := t.Since(since, m.Match); ok {
		return append(changes(nil, entries), ready(head, len(entries))), head
	}
	return resync(t, m, fmt.Sprintf("changes after %d are no longer retained (or are of another topic)", since))
}

// follow sends every change after cursor as it comes, and a heartbeat on
// an idle subscription, until ctx or end.
func follow(ctx context.Context, t *store.Table, m Matcher, cursor int64, every time.Duration, end <-chan time.Time, send func([]Message) error) error {
	heartbeat := time.NewTicker(every)
	defer heartbeat.Stop()
	for {
		changed := t.Changed()
		msgs, head := next(t, m, cursor)
		cursor = head
		if len(msgs) > 0 {
			if err := send(msgs); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-heartbeat.C:
			if err := send([]Message{heartbeatAt(cursor)}); err != nil {
				return err
			}
		case <-end:
			return send([]Message{endOfStream(cursor)})
		}
	}
}

// next is what a subscriber at cursor has not seen yet (the changes after
// it, or a reset and a snapshot when it fell behind the retained log), and
// the position that leaves it at.
func next(t *store.Table, m Matcher, cursor int64) ([]Message, int64) {
	entries, head, ok := t.Since(cursor, m.Match)
	if !ok {
		return resync(t, m, fmt.Sprintf("this subscriber fell behind: changes after %d are no longer retained", cursor))
	}
	if len(entries) == 0 {
		return nil, head
	}
	return changes(nil, entries), head
}

func heartbeatAt(cursor int64) Message {
	return Message{Kind: KindHeartbeat, ID: cursor, Data: []byte("{}")}
}

func endOfStream(cursor int64) Message {
	return Message{Kind: KindHeartbeat, ID: cursor, Data: []byte(`{"end":"stream time limit: reconnect to resume"}`)}
}

func waitHead(ctx context.Context, t *store.Table, seq int64, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for t.Head() < seq {
		select {
		case <-t.Changed():
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func changes(msgs []Message, entries []store.Entry) []Message {
	for _, e := range entries {
		msgs = append(msgs, Message{Kind: KindChange, ID: e.Seq, Data: e.JSON()})
	}
	return msgs
}

func ready(head int64, n int) Message {
	return Message{Kind: KindReady, ID: head, Data: fmt.Appendf(nil, `{"seq":%d,"count":%d}`, head, n)}
}

func snapshot(msgs []Message, t *store.Table, m Matcher) ([]Message, int64) {
	entries, head := t.Snapshot(m.Match)
	for _, e := range entries {
		msgs = append(msgs, Message{Kind: KindValue, Data: e.JSON()})
	}
	return append(msgs, ready(head, len(entries))), head
}

func resync(t *store.Table, m Matcher, reason string) ([]Message, int64) {
	resets.Inc()
	reset := Message{Kind: KindReset, Data: fmt.Appendf(nil, `{"reason":%q}`, reason)}
	return snapshot([]Message{reset}, t, m)
}
