package engine

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jobflow/jobflow/internal/consumerlag"
	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/promlocal"
)

// startObserve starts what watches the running plan: the consumer-lag
// gauges of every source and trigger and, unless turned off, the local
// Prometheus with the targets file it scrapes, kept current as instances
// come and go.
func (e *Engine) startObserve(stops *stack, p *plan.Plan, brokers []string) {
	l := stops.layer()
	var groups []consumerlag.Group
	for _, s := range p.Sources {
		groups = append(groups, consumerlag.Group{Name: s.Name, Kind: "source", Group: s.Group, Topics: s.Topics, Earliest: s.InitialOffset == "earliest"})
	}
	for _, t := range p.Triggers {
		groups = append(groups, consumerlag.Group{Name: t.Name, Kind: "trigger", Group: t.Group, Topics: []string{t.Topic}})
	}
	lag := consumerlag.New(brokers, groups, e.cfg.LagInterval, e.log)
	l.run(lag.Run)
	cfg := promlocal.Config{Bin: e.cfg.PrometheusBin, Dir: e.state("prometheus"), Port: e.cfg.PrometheusPort,
		ScrapeInterval: e.cfg.ScrapeInterval, Retention: 24 * time.Hour}
	if _, err := promlocal.WriteConfig(cfg); err != nil {
		e.log.Error("prometheus config", "err", err)
		return
	}
	targets := promlocal.NewTargetsWriter(promlocal.TargetsFile(cfg.Dir))
	l.run(func(ctx context.Context) { e.keepTargets(ctx, targets) })
	if !e.cfg.Prometheus {
		return
	}
	l.run(func(ctx context.Context) {
		if err := promlocal.Run(ctx, cfg, e.log); err != nil {
			e.say("prometheus: %v", err)
		}
	})
}

// keepTargets rewrites the targets file whenever the set of processes
// serving /metrics changes: the engine, every ready instance of every
// function, every adapter.
func (e *Engine) keepTargets(ctx context.Context, w *promlocal.TargetsWriter) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := w.Write(e.scrapeTargets()); err != nil {
			e.log.Warn("prometheus targets", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrapeTargets are the engine's /metrics and its processes', labelled
// with what they are (kind: engine, function or adapter; function: the
// function's name).
func (e *Engine) scrapeTargets() []promlocal.TargetGroup {
	groups := []promlocal.TargetGroup{{Targets: []string{fmt.Sprintf("127.0.0.1:%d", e.cfg.AdminPort)}, Labels: map[string]string{"kind": "engine"}}}
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, p := range e.pools {
		var addrs []string
		for _, in := range p.Status().PerInstance {
			if in.Ready && in.URL != "" {
				addrs = append(addrs, hostOf(in.URL))
			}
		}
		if len(addrs) > 0 {
			groups = append(groups, promlocal.TargetGroup{Targets: addrs, Labels: map[string]string{"kind": "function", "function": name}})
		}
	}
	for name, a := range e.adapters {
		if a.Ready() {
			groups = append(groups, promlocal.TargetGroup{Targets: []string{hostOf(a.URL())}, Labels: map[string]string{"kind": "adapter", "function": name}})
		}
	}
	return groups
}

// hostOf is the host:port of a URL (or the address itself).
func hostOf(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	if u, err := url.Parse(s); err == nil {
		return u.Host
	}
	return s
}
