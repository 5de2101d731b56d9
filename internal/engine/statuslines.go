package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

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
	e.say("  %-16s http://127.0.0.1:%d/", "console:", e.cfg.AdminPort)
	e.say("  %-16s http://127.0.0.1:%d/status  /metrics  /traces", "engine:", e.cfg.AdminPort)
	if e.cfg.Prometheus {
		e.say("  %-16s http://127.0.0.1:%d  (targets: %s)", "prometheus:", e.cfg.PrometheusPort, e.state("prometheus", "targets"))
	}
	e.say("  %-16s %s", "logs:", e.state("logs"))
	e.say("Ctrl-C stops everything.")
	e.say("")
}

// statusLoop prints one line per source and trigger, one per PingSource
// and one for the instances when something changed, until ctx ends. Lines
// fit the terminal (80 columns when it is not one): long ones wrap.
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
		scale := strings.Join(instanceStates(st), ", ")
		if !changed(st.Sources, prev.Sources) && !changed(st.Triggers, prev.Triggers) && !changed(st.Pings, prev.Pings) && scale == prevScale {
			continue
		}
		for _, l := range statusLines(time.Now(), e.cfg.StatusInterval, st, prev, termWidth(e.out)) {
			e.say("%s", l)
		}
		prev, prevScale = st, scale
	}
}

// statusLines are the lines of one status tick, none wider than width.
func statusLines(now time.Time, interval time.Duration, st, prev Status, width int) []string {
	at := now.Format("15:04:05") + " "
	var out []string
	add := func(name string, fields []string) {
		out = append(out, wrap(at+fmt.Sprintf("%-18s", name), fields, width)...)
	}
	sources := func(kind string, cur, before map[string]kafkasource.Stats) {
		for _, n := range sortedKeys(cur) {
			add(kind+n, sourceFields(cur[n], before[n], interval))
		}
	}
	sources("", st.Sources, prev.Sources)
	sources("trigger ", st.Triggers, prev.Triggers)
	for _, n := range sortedKeys(st.Pings) {
		p := st.Pings[n]
		add("pingsource "+n, []string{fmt.Sprintf("fired %d", p.Fired), fmt.Sprintf("delivered %d", p.Delivered), fmt.Sprintf("dropped %d", p.Dropped)})
	}
	var states []string
	for _, s := range instanceStates(st) {
		states = append(states, s+",")
	}
	if len(states) > 0 {
		last := &states[len(states)-1]
		*last = strings.TrimSuffix(*last, ",")
	}
	if len(states) == 0 {
		return out
	}
	return append(out, wrap(at+"instances:", states, width)...)
}

// sourceFields of one source or trigger: totals, rate and in flight, then
// what went wrong or was filtered only when there is some.
func sourceFields(s, prev kafkasource.Stats, interval time.Duration) []string {
	rate := float64(s.Delivered-prev.Delivered) / interval.Seconds()
	f := []string{fmt.Sprintf("delivered %-7d", s.Delivered), fmt.Sprintf("%6.1f/s", rate), fmt.Sprintf("in flight %d", s.InFlight)}
	for _, c := range []struct {
		label string
		n     int64
	}{{"retries", s.Failures}, {"dead-lettered", s.DeadLettered}, {"dropped", s.Dropped}, {"filtered", s.Filtered}} {
		if c.n > 0 {
			f = append(f, fmt.Sprintf("%s %d", c.label, c.n))
		}
	}
	return f
}

// wrap joins head and fields with two spaces (one after a comma) into
// lines of at most width columns; continuation lines are indented. A
// single field wider than a line is left whole.
func wrap(head string, fields []string, width int) []string {
	const indent = "           "
	var lines []string
	line := head
	for _, f := range fields {
		sep := "  "
		if strings.HasSuffix(line, ",") || strings.HasSuffix(line, ":") {
			sep = " "
		}
		if len(line)+len(sep)+len(f) > width && strings.TrimSpace(line) != "" && line != indent {
			lines = append(lines, strings.TrimRight(line, " "))
			line, sep = indent, ""
		}
		line += sep + f
	}
	return append(lines, strings.TrimRight(line, " "))
}

// termWidth is the width of out when it is a terminal, else $COLUMNS,
// else 80.
func termWidth(out io.Writer) int {
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w >= 40 {
			return w
		}
	}
	if w, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && w >= 40 {
		return w
	}
	return 80
}

func changed[S comparable](now, prev map[string]S) bool {
	for n, s := range now {
		if s != prev[n] {
			return true
		}
	}
	return false
}

// instanceStates are "name state" per function and adapter: instances,
// starting and draining ones, held requests, restarts.
func instanceStates(st Status) []string {
	var fl []string
	for _, n := range sortedKeys(st.Functions) {
		fs := st.Functions[n]
		state := "ready"
		if !fs.Ready {
			state = "NOT READY"
		}
		if sc := fs.Scale; sc != nil {
			state = fmt.Sprintf("%d", sc.Instances)
			if sc.Starting > 0 {
				state += fmt.Sprintf(" +%d starting", sc.Starting)
			}
			if sc.Draining > 0 {
				state += fmt.Sprintf(" -%d draining", sc.Draining)
			}
			if sc.Held > 0 {
				state += fmt.Sprintf(" held %d", sc.Held)
			}
		}
		if fs.Restarts > 0 {
			state += fmt.Sprintf(" restarts %d", fs.Restarts)
		}
		fl = append(fl, n+" "+state)
	}
	return fl
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// stopped says what Run stopped (last: the status just before), as the
// parts of the last line it prints.
func (e *Engine) stopped(p *plan.Plan, last Status) []string {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one+",")
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s,", n, many))
		}
	}
	instances, delivered := 0, int64(0)
	for _, f := range last.Functions {
		if f.Scale != nil {
			instances += f.Scale.Instances + f.Scale.Starting + f.Scale.Draining
		}
	}
	for _, s := range last.Sources {
		delivered += s.Delivered
	}
	for _, s := range last.Triggers {
		delivered += s.Delivered
	}
	add(len(p.Functions), "function", "functions")
	if len(p.Functions) > 0 {
		parts[len(parts)-1] = strings.TrimSuffix(parts[len(parts)-1], ",") + fmt.Sprintf(" (%d instances),", instances)
	}
	add(len(p.Sources), "KafkaSource", "KafkaSources")
	add(len(p.Triggers), "Trigger", "Triggers")
	add(len(p.Pings), "PingSource", "PingSources")
	add(len(p.Adapters), "adapter", "adapters")
	parts = append(parts, "the ingresses,")
	if len(e.cfg.KafkaBrokers) == 0 {
		parts = append(parts, "the Kafka broker,")
	}
	if e.cfg.PostgresURL == "" {
		parts = append(parts, "PostgreSQL,")
	}
	if e.cfg.ClickHouseAddr == "" {
		parts = append(parts, "ClickHouse,")
	}
	parts = append(parts, "the admin port;", fmt.Sprintf("%d events delivered, offsets committed.", delivered))
	return parts
}
