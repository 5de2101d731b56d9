package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkasource"
)

// printReady says where everything is: each HTTP function's URL with the
// hint of its func.yaml (jobflow.dev/local-hint), and the engine's own.
func (e *Engine) printReady(p *plan.Plan) {
	e.say("")
	e.say("jobflow is up.")
	for _, f := range p.Functions {
		if !f.HTTP && f.Hint == "" {
			continue
		}
		e.say("  %-16s %s", f.Name+":", f.URL)
		for _, line := range strings.Split(f.Hint, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				e.say("    %s", strings.ReplaceAll(line, "{url}", f.URL))
			}
		}
	}
	for _, b := range p.Brokers {
		e.say("  %-16s %s", "broker "+b.Name+":", b.URL)
		e.say("    send an event:  curl -i %s -H 'ce-specversion: 1.0' -H 'ce-type: dev.example.ping' -H 'ce-source: /me' -H 'ce-id: 1' -d '{}'", b.URL)
	}
	e.say("  %-16s http://127.0.0.1:%d/status  /metrics     logs: %s", "engine:", e.cfg.AdminPort, e.state("logs"))
	if e.cfg.Prometheus {
		e.say("  %-16s http://127.0.0.1:%d  (targets: %s)", "prometheus:", e.cfg.PrometheusPort, e.state("prometheus", "targets"))
	}
	e.say("Ctrl-C stops everything.")
	e.say("")
}

// statusLoop prints one line per source and trigger, one per PingSource
// and one for the instances when something changed, until ctx ends.
func (e *Engine) statusLoop(ctx context.Context) {
	if e.cfg.StatusInterval <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(e.cfg.StatusInterval)
	defer t.Stop()
	var prev Status
	prevScale := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := e.Status()
		scale := instancesLine(st)
		if !changed(st.Sources, prev.Sources) && !changed(st.Triggers, prev.Triggers) && !changed(st.Pings, prev.Pings) && scale == prevScale {
			continue
		}
		now := time.Now().Format("15:04:05")
		e.sourceLines(now, "", st.Sources, prev.Sources)
		e.sourceLines(now, "trigger ", st.Triggers, prev.Triggers)
		for _, n := range sortedKeys(st.Pings) {
			p := st.Pings[n]
			e.say("%s pingsource %-18s fired %-6d delivered %-6d dropped %d", now, n, p.Fired, p.Delivered, p.Dropped)
		}
		e.say("%s instances: %s", now, scale)
		prev, prevScale = st, scale
	}
}

// sourceLines prints a line per source (or trigger) of now.
func (e *Engine) sourceLines(now, kind string, cur, prev map[string]kafkasource.Stats) {
	for _, n := range sortedKeys(cur) {
		s, p := cur[n], prev[n]
		rate := float64(s.Delivered-p.Delivered) / e.cfg.StatusInterval.Seconds()
		filtered := ""
		if s.Filtered > 0 { // a trigger's events its filter did not match
			filtered = fmt.Sprintf("  filtered %d", s.Filtered)
		}
		e.say("%s %-18s delivered %-8d %7.1f/s  in flight %-4d retries %-5d dead-lettered %-4d dropped %d%s",
			now, kind+n, s.Delivered, rate, s.InFlight, s.Failures, s.DeadLettered, s.Dropped, filtered)
	}
}

func changed[S comparable](now, prev map[string]S) bool {
	for n, s := range now {
		if s != prev[n] {
			return true
		}
	}
	return false
}

// instancesLine is "name state" per function and adapter: instances,
// starting and draining ones, held requests, restarts.
func instancesLine(st Status) string {
	var fl []string
	for _, n := range sortedKeys(st.Functions) {
		fs := st.Functions[n]
		state := "ready"
		if !fs.Ready {
			state = "NOT READY"
		}
		if sc := fs.Scale; sc != nil {
			state = fmt.Sprintf("%d", sc.Instances)
			if sc.Starting+sc.Draining > 0 {
				state += fmt.Sprintf(" (+%d starting, -%d draining)", sc.Starting, sc.Draining)
			}
			if sc.Held > 0 {
				state += fmt.Sprintf(" held %d", sc.Held)
			}
		}
		if fs.Restarts > 0 {
			state += fmt.Sprintf(" (restarts %d)", fs.Restarts)
		}
		fl = append(fl, n+" "+state)
	}
	return strings.Join(fl, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
