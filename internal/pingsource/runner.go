package pingsource

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/robfig/cron/v3"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

// Sender makes one delivery attempt (the engine's KafkaSource sender).
type Sender interface {
	Send(ctx context.Context, target string, e *event.Event, timeout time.Duration) delivery.Attempt
}

// Retry is how a ping is sent, as Knative's mtping adapter sends it: five
// retries with an exponential backoff from 50 ms; then it is dropped and
// logged (the next tick sends a new one).
var Retry = delivery.Policy{Retry: 5, Backoff: delivery.Exponential, Delay: 50 * time.Millisecond, Timeout: 30 * time.Second}

// Ping is one PingSource with the URL of its sink.
type Ping struct {
	Spec
	Sink string
}

// Stats of one PingSource.
type Stats struct {
	Fired     int64 `json:"fired"`     // ticks
	Delivered int64 `json:"delivered"` // events the sink took
	Dropped   int64 `json:"dropped"`   // events it did not take after the retries
}

var sent = metrics.NewCounter("pingsource_events_total", "Events sent by a PingSource, by outcome (delivered, dropped).", "pingsource", "outcome")

// Runner fires the pings of a set of PingSources.
type Runner struct {
	ctx    context.Context // Run's: ends the sends under way
	cron   *cron.Cron
	sender Sender
	log    *slog.Logger
	stats  map[string]*counts
}

type counts struct{ fired, delivered, dropped atomic.Int64 }

// New checks every ping and schedules it; nothing fires before Run.
func New(pings []Ping, sender Sender, log *slog.Logger) (*Runner, error) {
	r := &Runner{cron: cron.New(), sender: sender, log: log, stats: map[string]*counts{}}
	for _, p := range pings {
		sched, data, err := p.Check()
		if err != nil {
			return nil, &SpecError{Name: p.Name, Err: err}
		}
		c := &counts{}
		r.stats[p.Name] = c
		r.cron.Schedule(sched, cron.FuncJob(func() { r.fire(p, data, c) }))
	}
	return r, nil
}

// SpecError is a PingSource the engine cannot run, with the reason.
type SpecError struct {
	Name string
	Err  error
}

func (e *SpecError) Error() string { return "pingsource " + e.Name + ": " + e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

// Run fires pings until ctx ends, then waits for the sends under way. The
// first tick is the schedule's next after Run starts: ticks missed before
// (the engine was down) are not fired late.
func (r *Runner) Run(ctx context.Context) error {
	r.ctx = ctx
	r.cron.Start()
	<-ctx.Done()
	<-r.cron.Stop().Done()
	return nil
}

// Stats returns each PingSource's counts.
func (r *Runner) Stats() map[string]Stats {
	out := make(map[string]Stats, len(r.stats))
	for name, c := range r.stats {
		out[name] = Stats{Fired: c.fired.Load(), Delivered: c.delivered.Load(), Dropped: c.dropped.Load()}
	}
	return out
}

// Event is the event a tick of p sends.
func Event(p Spec, data []byte, now time.Time) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetType(EventType)
	e.SetSource(p.Source())
	e.SetTime(now)
	if data != nil {
		_ = e.SetData(p.ContentType, data) // bytes are set as they are: no error
	}
	return e
}

func (r *Runner) fire(p Ping, data []byte, c *counts) {
	c.fired.Add(1)
	e := Event(p.Spec, data, time.Now())
	a := Retry.Do(r.ctx, func(ctx context.Context, _ int) delivery.Attempt {
		return r.sender.Send(ctx, p.Sink, &e, Retry.Timeout)
	})
	if a.OK() {
		c.delivered.Add(1)
		sent.WithLabelValues(p.Name, "delivered").Inc()
		return
	}
	c.dropped.Add(1)
	sent.WithLabelValues(p.Name, "dropped").Inc()
	r.log.Warn("pingsource: the sink did not take the event; it is dropped, as on Knative",
		"pingsource", p.Name, "sink", p.Sink, "status", a.Status, "err", a.Err)
}
