package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// loadGen posts jobs to a receiver's POST /create/job and reads their ids
// from the answers.
type loadGen struct {
	client *http.Client
	url    string
	body   []byte
	failed atomic.Int64 // requests not answered 200 (or not sent)
	errMu  sync.Mutex
	errOne string // the first failure, for the report
}

func newLoadGen(url string, body []byte) *loadGen {
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}
	return &loadGen{client: &http.Client{Transport: tr, Timeout: time.Minute}, url: url, body: body}
}

// post submits one job; the time is taken just before the request is sent.
func (g *loadGen) post(ctx context.Context) (uuid.UUID, time.Time, bool) {
	submitted := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(g.body))
	if err != nil {
		g.fail(err.Error())
		return uuid.UUID{}, submitted, false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			g.fail(err.Error())
		}
		return uuid.UUID{}, submitted, false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ans struct {
		ID uuid.UUID `json:"id"`
	}
	if err == nil && resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(body, &ans)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		g.fail(fmt.Sprintf("%s: %s %v", resp.Status, bytes.TrimSpace(body), err))
		return uuid.UUID{}, submitted, false
	}
	return ans.ID, submitted, true
}

func (g *loadGen) fail(what string) {
	g.failed.Add(1)
	g.errMu.Lock()
	if g.errOne == "" {
		g.errOne = what
	}
	g.errMu.Unlock()
}

// failures tells how many requests failed and the first reason ("" if none).
func (g *loadGen) failures() string {
	n := g.failed.Load()
	if n == 0 {
		return ""
	}
	g.errMu.Lock()
	defer g.errMu.Unlock()
	return fmt.Sprintf("%d requests failed (first: %s)", n, g.errOne)
}

// closedLoop runs clients that each post a job as soon as their previous
// one was answered, for d; accepted jobs go to onJob.
func (g *loadGen) closedLoop(ctx context.Context, clients int, d time.Duration, onJob func(uuid.UUID, time.Time)) {
	// A request under way at the end is answered, not cancelled: a
	// cancelled one may still have made a job, which the counts would see.
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				if id, at, ok := g.post(ctx); ok {
					onJob(id, at)
				}
			}
		}()
	}
	wg.Wait()
}

// openLoop posts jobs at rate per second for d whatever the answers take
// (each in its own goroutine, started on a 1 ms tick when due), so that a
// slow answer does not slow the offered load; at most maxOutstanding wait
// for an answer at once (beyond that the load generator itself would be
// the bottleneck: those are counted as failures). It returns how many it
// offered.
func (g *loadGen) openLoop(ctx context.Context, rate float64, d time.Duration, onJob func(uuid.UUID, time.Time)) int {
	const maxOutstanding = 20000
	var wg sync.WaitGroup
	var outstanding atomic.Int64
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	total := int(rate * d.Seconds())
	sent := 0
	for sent < total && ctx.Err() == nil {
		<-tick.C
		due := min(total, int(time.Since(start).Seconds()*rate))
		for ; sent < due; sent++ {
			if outstanding.Load() >= maxOutstanding {
				g.fail("load generator: too many requests outstanding")
				continue
			}
			outstanding.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer outstanding.Add(-1)
				if id, at, ok := g.post(ctx); ok {
					onJob(id, at)
				}
			}()
		}
	}
	wg.Wait()
	return sent
}

// infoLoad is a closed loop of GET url+id over ids for d: requests/s and
// the answers' latencies.
func infoLoad(ctx context.Context, url string, ids []uuid.UUID, clients int, d time.Duration) (n int, rate float64, p50, p99 time.Duration, failed int) {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var bad int
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			myBad := 0
			for i := c; ctx.Err() == nil; i += clients {
				t0 := time.Now()
				resp, err := client.Get(url + ids[i%len(ids)].String())
				if err != nil {
					if ctx.Err() == nil {
						myBad++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					myBad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat, bad = append(lat, mine...), bad+myBad
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	return len(lat), float64(len(lat)) / took.Seconds(), quantile(lat, 0.5), quantile(lat, 0.99), bad
}

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
