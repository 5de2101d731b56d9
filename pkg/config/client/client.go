// Package client is the Go client of live configuration for functions: it
// subscribes to keys on config-subscribe (Server-Sent Events), keeps their
// values in a local cache (and, when asked, on disk as last-known-good),
// resumes after a disconnection from the last event it saw, with a
// jittered backoff, and hands each key's value to watchers. Until a key
// has a value its users keep their default (the environment's setting); a
// value that fails its validation hook keeps the previous one.
//
//	c := client.New(client.Options{URL: os.Getenv("JOBFLOW_CONFIG_URL"), Keys: []string{"jobs/processor/*"}})
//	maxSleep := client.Bind(c, "jobs/processor/max-sleep", cfg.MaxSleep, nil)
//	go c.Run(ctx)
//	... maxSleep.Load() ...
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options of a client.
type Options struct {
	URL       string   // base URL of config-subscribe; empty: no subscription, defaults stay
	Keys      []string // keys, or prefixes ending in '*'
	CacheFile string   // last-known-good values on disk; empty: none
	Log       *slog.Logger
	// MinBackoff and MaxBackoff bound the wait before a reconnection
	// (jittered, doubling): defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	HTTP                   *http.Client
}

// Value is a key's value and where it comes from.
type Value struct {
	Value    json.RawMessage `json:"value"`
	Revision string          `json:"revision"`
	Seq      int64           `json:"seq"`
}

// Client holds the subscribed keys' values.
type Client struct {
	o Options

	mu       sync.Mutex
	values   map[string]Value
	lastID   int64
	checks   map[string]func(json.RawMessage) error
	watchers map[string][]func(v json.RawMessage, ok bool)
	ready    chan struct{}
	once     sync.Once
	failed   chan struct{} // closed when an attempt got nothing: no service answers
	failOnce sync.Once
}

// New returns a client; Run connects it. With a cache file its values
// are loaded from it first (last-known-good while the service is away).
func New(o Options) *Client {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{} // no timeout: the stream is long-lived
	}
	c := &Client{o: o, values: map[string]Value{}, checks: map[string]func(json.RawMessage) error{},
		watchers: map[string][]func(json.RawMessage, bool){}, ready: make(chan struct{}), failed: make(chan struct{})}
	c.load()
	if o.URL == "" {
		c.once.Do(func() { close(c.ready) }) // nothing to wait for: the defaults are the values
	}
	return c
}

// Get is a key's value, if it has one.
func (c *Client) Get(key string) (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.values[key]
	return v.Value, ok
}

// Watch calls f with the key's value now (ok false: none yet) and at each
// change; ok false after a deletion.
func (c *Client) Watch(key string, f func(v json.RawMessage, ok bool)) {
	c.mu.Lock()
	c.watchers[key] = append(c.watchers[key], f)
	v, ok := c.values[key]
	c.mu.Unlock()
	f(v.Value, ok)
}

// Validate sets key's validation hook: a value it refuses is not taken
// (the previous one stays) and is logged.
func (c *Client) Validate(key string, check func(json.RawMessage) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[key] = check
}

// Ready is closed once the first subscription has delivered the values
// (at once without a URL).
func (c *Client) Ready() <-chan struct{} { return c.ready }

// Failed is closed once a subscription attempt ended without delivering
// anything (the service refused the connection or answered an error):
// whoever waits for Ready need not wait for a service that is not there.
func (c *Client) Failed() <-chan struct{} { return c.failed }

// LastID is the position of the last event seen (what a resume sends).
func (c *Client) LastID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// Run subscribes until ctx ends, reconnecting with a jittered backoff.
func (c *Client) Run(ctx context.Context) {
	if c.o.URL == "" {
		return
	}
	wait := c.o.MinBackoff
	for ctx.Err() == nil {
		delivered, err := c.subscribe(ctx)
		if ctx.Err() != nil {
			return
		}
		if delivered {
			wait = c.o.MinBackoff
		} else {
			c.failOnce.Do(func() { close(c.failed) })
		}
		c.o.Log.Debug("config subscription ended, reconnecting", "err", err, "last_id", c.LastID())
		d := wait/2 + rand.N(wait/2+1) // jitter: a fleet does not come back at once
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		wait = min(wait*2, c.o.MaxBackoff)
	}
}

// subscribe runs one connection; delivered says whether it got anywhere.
func (c *Client) subscribe(ctx context.Context) (delivered bool, err error) {
	u := strings.TrimSuffix(c.o.URL, "/") + "/subscribe?keys=" + url.QueryEscape(strings.Join(c.o.Keys, ","))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if id := c.LastID(); id > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(id, 10))
	}
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("subscribe: %s", resp.Status)
	}
	var snapshot map[string]Value // being received (after a reset, or the first one)
	if c.LastID() == 0 {
		snapshot = map[string]Value{}
	}
	err = ReadEvents(resp.Body, func(ev Event) error {
		delivered = true
		switch ev.Name {
		case "reset":
			snapshot = map[string]Value{}
		case "value", "change":
			var d struct {
				Value
				Key     string `json:"key"`
				Deleted bool   `json:"deleted"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				return fmt.Errorf("event %s: %w", ev.Name, err)
			}
			if snapshot != nil && ev.Name == "value" {
				snapshot[d.Key] = d.Value
			} else {
				c.apply(d.Key, d.Value, d.Deleted)
			}
		case "ready":
			if snapshot != nil {
				c.replace(snapshot)
				snapshot = nil
			}
			c.once.Do(func() { close(c.ready) })
		}
		if id, err := strconv.ParseInt(ev.ID, 10, 64); err == nil && ev.ID != "" {
			c.mu.Lock()
			c.lastID = id
			c.mu.Unlock()
			if ev.Name != "heartbeat" {
				c.save()
			}
		}
		return nil
	})
	if err == nil {
		err = errors.New("stream ended")
	}
	return delivered, err
}

// apply takes one key's change, if its check accepts it.
func (c *Client) apply(key string, v Value, deleted bool) {
	c.mu.Lock()
	if !deleted {
		if check := c.checks[key]; check != nil {
			if err := check(v.Value); err != nil {
				c.mu.Unlock()
				c.o.Log.Warn("config value refused, keeping the previous one", "key", key, "revision", v.Revision, "err", err)
				return
			}
		}
		c.values[key] = v
	} else {
		delete(c.values, key)
	}
	ws := c.watchers[key]
	c.mu.Unlock()
	for _, f := range ws {
		f(v.Value, !deleted)
	}
}

// replace takes a whole snapshot: keys it lacks are deleted.
func (c *Client) replace(snap map[string]Value) {
	c.mu.Lock()
	var gone []string
	for k := range c.values {
		if _, ok := snap[k]; !ok {
			gone = append(gone, k)
		}
	}
	c.mu.Unlock()
	for _, k := range gone {
		c.apply(k, Value{}, true)
	}
	for k, v := range snap {
		if cur, ok := c.Get(k); ok && string(cur) == string(v.Value) {
			continue
		}
		c.apply(k, v, false)
	}
}

type cacheFile struct {
	LastID int64            `json:"last_id"`
	Values map[string]Value `json:"values"`
}

// load reads the last-known-good values.
func (c *Client) load() {
	if c.o.CacheFile == "" {
		return
	}
	b, err := os.ReadFile(c.o.CacheFile)
	if err != nil {
		return
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil {
		c.o.Log.Warn("config cache unreadable, ignored", "file", c.o.CacheFile, "err", err)
		return
	}
	c.values, c.lastID = f.Values, f.LastID
	if c.values == nil {
		c.values = map[string]Value{}
	}
}

// save writes the values (atomically) to the cache file.
func (c *Client) save() {
	if c.o.CacheFile == "" {
		return
	}
	c.mu.Lock()
	b, err := json.Marshal(cacheFile{LastID: c.lastID, Values: c.values})
	c.mu.Unlock()
	if err != nil {
		return
	}
	tmp := c.o.CacheFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(c.o.CacheFile), 0o755); err == nil {
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, c.o.CacheFile)
		}
		if err != nil {
			c.o.Log.Warn("config cache not written", "file", c.o.CacheFile, "err", err)
		}
	}
}
