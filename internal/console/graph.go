package console

import (
	"net/url"
	"sort"
	"strings"

	"github.com/jobflow/jobflow/internal/engine/plan"
)

// Node kinds of the flow.
const (
	KindFunction = "function"
	KindTopic    = "topic"
	KindBroker   = "broker" // a Broker, drawn as its topic
	KindSource   = "source" // a KafkaSource
	KindTrigger  = "trigger"
	KindPing     = "ping" // a PingSource
	KindAdapter  = "adapter"
)

// Edge kinds.
const (
	EdgeEvents     = "events"      // records or requests that flow
	EdgeDeadLetter = "dead_letter" // a source's or trigger's dead-letter sink
	EdgeInferred   = "inferred"    // a writer the manifests do not name (an adapter's own topics)
)

// Graph is the flow of a plan: what the console draws. Ids are
// "<kind>/<name>" (a topic's name, a broker's namespace/name).
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
	// DeadLetterTopics are the topics of the dead-letter sinks.
	DeadLetterTopics []string `json:"dead_letter_topics"`
}

// Node is one thing of the flow.
type Node struct {
	ID     string            `json:"id"`
	Kind   string            `json:"kind"`
	Name   string            `json:"name"`
	Detail map[string]string `json:"detail,omitempty"` // what the manifests say of it
}

// Edge is one way events go. Counter names the count its rate comes from
// (Sample.Counts); InFlight the one of its events under way; both may be
// empty.
type Edge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Kind     string `json:"kind"`
	Label    string `json:"label,omitempty"`
	Counter  string `json:"counter,omitempty"`
	InFlight string `json:"in_flight,omitempty"`
}

// Count names: the Sample.Counts keys the engine fills (see Sample).
func countDelivered(kind, name string) string { return kind + "/" + name + "/delivered" }
func countTaken(kind, name string) string     { return kind + "/" + name + "/taken" }
func countInFlight(kind, name string) string  { return kind + "/" + name + "/in_flight" }
func countDead(kind, name string) string      { return kind + "/" + name + "/dead_lettered" }
func countSink(name string) string            { return "sink/" + name + "/accepted" }
func countBroker(name string) string          { return "broker/" + name + "/accepted" }

// NewGraph draws p: functions, topics, Brokers (as their topic), sources,
// triggers, PingSources and adapters; a KafkaSink is the edge from its
// writers to its topic.
func NewGraph(p *plan.Plan) Graph {
	g := &graphBuilder{ids: map[string]bool{}, written: map[string]bool{}}
	for _, t := range p.Topics {
		g.node(KindTopic, t.Name, nil)
	}
	for _, b := range p.Brokers {
		// The broker replaces its topic's node.
		g.rename("topic/"+b.Topic, Node{ID: "broker/" + b.Namespace + "/" + b.Name, Kind: KindBroker, Name: b.Name,
			Detail: map[string]string{"topic": b.Topic, "url": b.URL}})
	}
	for _, f := range p.Functions {
		d := map[string]string{"url": f.URL}
		if f.HTTP {
			d["invoke"] = "http"
		}
		g.node(KindFunction, f.Name, d)
	}
	for _, a := range p.Adapters {
		g.node(KindAdapter, a.Name, map[string]string{"package": a.Package})
	}
	r := newTargets(p)
	for _, f := range p.Functions {
		g.writers("function/"+f.Name, f.Env, r)
	}
	for _, a := range p.Adapters {
		g.writers("adapter/"+a.Name, a.Env, r)
	}
	for _, s := range p.Sources {
		id := g.node(KindSource, s.Name, map[string]string{"group": s.Group, "ordering": ordering(s.Ordered, s.ByKey), "topics": strings.Join(s.Topics, ", ")})
		for _, t := range s.Topics {
			g.edge(Edge{From: "topic/" + t, To: id, Kind: EdgeEvents, Counter: countTaken(KindSource, s.Name)})
		}
		g.deliveries(KindSource, s.Name, s.Target, s.DeadLetter, r)
	}
	for _, t := range p.Triggers {
		d := map[string]string{"group": t.Group, "ordering": ordering(t.Ordered, t.ByKey)}
		if f := filterText(t); f != "" {
			d["filter"] = f
		}
		id := g.node(KindTrigger, t.Name, d)
		g.edge(Edge{From: "broker/" + t.Namespace + "/" + t.Broker, To: id, Kind: EdgeEvents, Counter: countTaken(KindTrigger, t.Name)})
		g.deliveries(KindTrigger, t.Name, t.Target, t.DeadLetter, r)
	}
	for _, ping := range p.Pings {
		id := g.node(KindPing, ping.Name, map[string]string{"schedule": ping.Schedule})
		if to, label := r.resolve(ping.Sink); to != "" {
			g.written[to] = true
			g.edge(Edge{From: id, To: to, Kind: EdgeEvents, Label: label, Counter: countDelivered(KindPing, ping.Name)})
		}
	}
	g.inferAdapterTopics(p)
	g.g.DeadLetterTopics = r.deadLetterTopics
	sort.Strings(g.g.DeadLetterTopics)
	return g.g
}

type graphBuilder struct {
	g       Graph
	ids     map[string]bool
	written map[string]bool // nodes something in the plan writes to
}

func (g *graphBuilder) node(kind, name string, detail map[string]string) string {
	id := kind + "/" + name
	if !g.ids[id] {
		g.ids[id] = true
		g.g.Nodes = append(g.g.Nodes, Node{ID: id, Kind: kind, Name: name, Detail: detail})
	}
	return id
}

func (g *graphBuilder) rename(old string, n Node) {
	for i := range g.g.Nodes {
		if g.g.Nodes[i].ID == old {
			g.g.Nodes[i] = n
			delete(g.ids, old)
			g.ids[n.ID] = true
			return
		}
	}
	g.g.Nodes = append(g.g.Nodes, n)
	g.ids[n.ID] = true
}

func (g *graphBuilder) edge(e Edge) {
	if g.ids[e.From] && g.ids[e.To] {
		g.g.Edges = append(g.g.Edges, e)
	}
}

// writers adds an edge per env value of a process that names a sink or a
// broker (K_SINK and the like), labelled with the sink and the variable.
func (g *graphBuilder) writers(from string, env []string, r *targets) {
	for _, kv := range env {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(v, "http") {
			continue
		}
		to, label := r.resolve(v)
		if to == "" || strings.HasPrefix(to, "function/") {
			continue
		}
		g.written[to] = true
		if label == "" {
			label = name
		} else {
			label += " (" + name + ")"
		}
		g.edge(Edge{From: from, To: to, Kind: EdgeEvents, Label: label, Counter: r.counter[strings.TrimSuffix(v, "/")]})
	}
}

// deliveries adds the edges of a source's or trigger's target and
// dead-letter sink.
func (g *graphBuilder) deliveries(kind, name, target, deadLetter string, r *targets) {
	id := kind + "/" + name
	if to, label := r.resolve(target); to != "" {
		g.written[to] = true
		g.edge(Edge{From: id, To: to, Kind: EdgeEvents, Label: label, Counter: countDelivered(kind, name), InFlight: countInFlight(kind, name)})
	}
	if to, label := r.resolve(deadLetter); to != "" {
		g.edge(Edge{From: id, To: to, Kind: EdgeDeadLetter, Label: label, Counter: countDead(kind, name)})
		if t := strings.TrimPrefix(to, "topic/"); t != to && !contains(r.deadLetterTopics, t) {
			r.deadLetterTopics = append(r.deadLetterTopics, t)
		}
	}
}

// inferAdapterTopics: topics that something reads but nothing in the plan
// writes are written by a process outside the manifests' wiring; with one
// adapter that writes nowhere else, that is it (the CDC source's topics).
func (g *graphBuilder) inferAdapterTopics(p *plan.Plan) {
	var idle []string
	for _, a := range p.Adapters {
		id := "adapter/" + a.Name
		writes := false
		for _, e := range g.g.Edges {
			writes = writes || e.From == id
		}
		if !writes {
			idle = append(idle, id)
		}
	}
	if len(idle) != 1 {
		return
	}
	read := map[string]bool{}
	for _, e := range g.g.Edges {
		read[e.From] = true
	}
	for _, t := range p.Topics {
		id := "topic/" + t.Name
		if g.ids[id] && read[id] && !g.written[id] {
			g.edge(Edge{From: idle[0], To: id, Kind: EdgeInferred})
		}
	}
}

// targets maps the plan's URLs to node ids.
type targets struct {
	functions        map[string]string // URL → id
	brokers          map[string]string
	sinks            map[string]string // path /ns/name → topic id
	sinkNames        map[string]string // path → sink name
	counter          map[string]string // URL → its count (sink or broker ingress)
	deadLetterTopics []string
}

func newTargets(p *plan.Plan) *targets {
	r := &targets{functions: map[string]string{}, brokers: map[string]string{}, sinks: map[string]string{},
		sinkNames: map[string]string{}, counter: map[string]string{}}
	for _, f := range p.Functions {
		r.functions[strings.TrimSuffix(f.URL, "/")] = "function/" + f.Name
	}
	for _, b := range p.Brokers {
		r.brokers[b.URL] = "broker/" + b.Namespace + "/" + b.Name
		r.counter[b.URL] = countBroker(b.Name)
	}
	for _, s := range p.Sinks {
		r.sinks[s.Path()] = "topic/" + s.Topic
		r.sinkNames[s.Path()] = s.Name
	}
	return r
}

// resolve is the node a URL reaches and the edge's label (a KafkaSink's
// name), or "".
func (r *targets) resolve(raw string) (id, label string) {
	if raw == "" {
		return "", ""
	}
	raw = strings.TrimSuffix(raw, "/")
	if id := r.functions[raw]; id != "" {
		return id, ""
	}
	if id := r.brokers[raw]; id != "" {
		return id, ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", ""
	}
	if id := r.sinks[u.Path]; id != "" {
		r.counter[raw] = countSink(r.sinkNames[u.Path])
		return id, r.sinkNames[u.Path]
	}
	return "", ""
}

func ordering(ordered, byKey bool) string {
	switch {
	case byKey:
		return "by key"
	case ordered:
		return "ordered"
	}
	return "unordered"
}

// filterText is a short form of a trigger's filter.
func filterText(t plan.Trigger) string {
	var parts []string
	for _, k := range sortedKeys(t.Attributes) {
		parts = append(parts, k+"="+t.Attributes[k])
	}
	for _, f := range t.Filters {
		for _, m := range []struct {
			op string
			kv map[string]string
		}{{"=", f.Exact}, {" prefix ", f.Prefix}, {" suffix ", f.Suffix}} {
			for _, k := range sortedKeys(m.kv) {
				parts = append(parts, k+m.op+m.kv[k])
			}
		}
		if f.CESQL != "" {
			parts = append(parts, f.CESQL)
		}
		if len(f.All)+len(f.Any) > 0 || f.Not != nil {
			parts = append(parts, "(nested)")
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
