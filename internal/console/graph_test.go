package console

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/manifest"
)

// repositoryPlan is the plan of the repository's manifests on made-up
// addresses.
func repositoryPlan(t *testing.T) *plan.Plan {
	t.Helper()
	topo, err := manifest.Load("../..")
	if err != nil {
		t.Fatal(err)
	}
	at := plan.Addresses{Ingress: "127.0.0.1:8070", BrokerIngress: "127.0.0.1:8071", Functions: map[string]string{}, Adapters: map[string]int{},
		Postgres: "postgres://postgres@127.0.0.1:55432/jobflow", ClickHouse: "127.0.0.1:59000", Brokers: []string{"127.0.0.1:9092"}}
	for i, f := range topo.Functions {
		at.Functions[f.Name] = fmt.Sprintf("127.0.0.1:%d", 9100+i)
	}
	for i, a := range topo.Adapters {
		at.Adapters[a.Name] = 9200 + i
	}
	p, err := plan.Build(topo, plan.Settings{Root: "../..", Namespace: "jobflow", StateDir: t.TempDir()}, at)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The graph of the repository's plan has every function, source, trigger,
// PingSource and adapter, and the edges the manifests wire.
func TestGraphOfTheRepositoryPlan(t *testing.T) {
	p := repositoryPlan(t)
	g := NewGraph(p)
	ids := map[string]Node{}
	for _, n := range g.Nodes {
		if _, dup := ids[n.ID]; dup {
			t.Errorf("node %s twice", n.ID)
		}
		ids[n.ID] = n
	}
	for _, f := range p.Functions {
		if _, ok := ids["function/"+f.Name]; !ok {
			t.Errorf("no node for function %s", f.Name)
		}
	}
	for _, s := range p.Sources {
		if _, ok := ids["source/"+s.Name]; !ok {
			t.Errorf("no node for source %s", s.Name)
		}
	}
	if len(p.Triggers) == 0 || len(p.Pings) == 0 || len(p.Adapters) == 0 || len(p.Brokers) == 0 {
		t.Fatalf("the repository's plan lost its triggers, pings, adapters or brokers: %+v", p)
	}
	edges := map[string]Edge{}
	for _, e := range g.Edges {
		if _, ok := ids[e.From]; !ok {
			t.Errorf("edge from unknown %s", e.From)
		}
		if _, ok := ids[e.To]; !ok {
			t.Errorf("edge to unknown %s", e.To)
		}
		edges[e.From+" -> "+e.To] = e
	}
	b := "broker/" + p.Brokers[0].Namespace + "/" + p.Brokers[0].Name
	// A PingSource that sends to the broker (others send to a function).
	ping := p.Pings[0]
	for _, pg := range p.Pings {
		if _, ok := edges["ping/"+pg.Name+" -> "+b]; ok {
			ping = pg
			break
		}
	}
	want := map[string]string{
		"function/receiver -> topic/receiver-topic":                        countSink("receiver-sink"),
		"topic/receiver-topic -> source/processor-source":                  countTaken(KindSource, "processor-source"),
		"source/processor-source -> function/processor":                    countDelivered(KindSource, "processor-source"),
		"source/processor-source -> topic/dead-letter-topic":               countDead(KindSource, "processor-source"),
		"function/converter -> topic/clickhouse-topic":                     countSink("clickhouse-sink"),
		b + " -> trigger/" + p.Triggers[0].Name:                            countTaken(KindTrigger, p.Triggers[0].Name),
		"ping/" + ping.Name + " -> " + b:                                   countDelivered(KindPing, ping.Name),
		"adapter/" + p.Adapters[0].Name + " -> topic/dialogs.public.users": "",
	}
	for k, counter := range want {
		e, ok := edges[k]
		if !ok {
			t.Errorf("no edge %s", k)
			continue
		}
		if e.Counter != counter {
			t.Errorf("edge %s counts %q, want %q", k, e.Counter, counter)
		}
	}
	if e := edges["source/processor-source -> topic/dead-letter-topic"]; e.Kind != EdgeDeadLetter {
		t.Errorf("dead-letter edge of kind %q", e.Kind)
	}
	if strings.Join(g.DeadLetterTopics, ",") != "dead-letter-topic" {
		t.Errorf("dead-letter topics %v", g.DeadLetterTopics)
	}
	if f := ids["trigger/"+p.Triggers[0].Name].Detail["filter"]; !strings.Contains(f, "type=") {
		t.Errorf("trigger filter %q", f)
	}
}
