// Package plan turns the manifests (internal/manifest) into what the local
// engine runs: one plain value with every topic, KafkaSink, KafkaSource,
// function and adapter resolved to local addresses and environments.
// Building a plan starts nothing; the runner (package engine) starts it.
//
// Nothing here knows a function by name: what is special about a function
// comes from its func.yaml (envs, annotations such as jobflow.dev/local-port)
// or from the manifests that name it.
package plan

import (
	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/pingsource"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// Settings are the engine settings a plan depends on.
type Settings struct {
	Root      string // repository root: adapters' packages are built here
	Namespace string // namespace of manifests that name none
	StateDir  string // binaries go to StateDir/bin
	// Databases overrides the URL of databases named by the secret rule
	// (see env.go); the others are created on the local server.
	Databases map[string]string
	// OneEventPerRequest ignores jobflow.dev/delivery.batch-size.
	OneEventPerRequest bool
	Scale              autoscaler.Overrides
}

// Addresses are where the servers and listeners the runner started (or
// reserved) are; they are inputs, so a plan can be built without them
// existing (tests pass made-up ones).
type Addresses struct {
	Ingress string // host:port of the KafkaSink ingress
	// BrokerIngress is host:port of the Brokers' ingress (its own port,
	// as Knative serves brokers on their own host).
	BrokerIngress string
	Functions     map[string]string // host:port of each function's activator
	Adapters      map[string]int    // local port of each adapter's container port
	Postgres      string            // URL of the local server's main database
	ClickHouse    string            // host:port (native protocol)
	Brokers       []string
}

// Plan is everything the engine runs, resolved.
type Plan struct {
	Topics    []kafkabroker.TopicSpec
	Sinks     []kafkasink.Sink // served by the ingress
	Sources   []Source
	Brokers   []Broker // served by the broker ingress; their topics are in Topics
	Triggers  []Trigger
	Pings     []pingsource.Ping
	Functions []Function
	Adapters  []Adapter
	// Databases are the databases on the local server that functions or
	// adapters name and Settings.Databases does not override; the runner
	// creates the missing ones.
	Databases []string
}

// Function is one function: a pool of instances behind its activator.
type Function struct {
	Name    string
	Dir     string // holds func.yaml and go.mod
	Package string // built in Dir
	Bin     string
	Addr    string // host:port of its activator
	URL     string
	Env     []string // added to the engine's own environment
	Scale   autoscaler.Config
	HTTP    bool   // invoke: http (called by users, not only by sources)
	Hint    string // printed under its URL when up ({url} replaced)
}

// Source is one KafkaSource with its targets resolved to URLs.
type Source struct {
	Name, Namespace      string
	Topics               []string
	Group, InitialOffset string
	Ordered, ByKey       bool
	MaxInFlight          int
	BatchSize            int
	Policy               delivery.Policy
	Target               string
	DeadLetter           string // empty: none
}

// Adapter is a long-running process (adapters/), never scaled.
type Adapter struct {
	Name    string
	Dir     string // the repository root, where Package is built
	Package string // Go import path (its ko:// image)
	Bin     string
	Port    int // its container port, mapped to a local one
	Env     []string
	After   []string // functions that must run before it starts
}

// Build resolves topo (already narrowed by Select) against the settings
// and addresses.
func Build(topo *manifest.Topology, s Settings, at Addresses) (*Plan, error) {
	r := newResolver(topo, s, at)
	p := &Plan{}
	for _, t := range topo.Topics {
		p.Topics = append(p.Topics, kafkabroker.TopicSpec{Name: t.TopicName(), Partitions: t.Spec.Partitions, Config: t.Spec.Config})
	}
	for _, k := range topo.Sinks {
		p.Sinks = append(p.Sinks, kafkasink.Sink{Namespace: r.ns(k.Namespace), Name: k.Name, Topic: k.Spec.Topic, Structured: k.Structured()})
	}
	var err error
	if p.Functions, err = buildFunctions(r); err != nil {
		return nil, err
	}
	if p.Sources, err = buildSources(r); err != nil {
		return nil, err
	}
	if p.Adapters, err = buildAdapters(r); err != nil {
		return nil, err
	}
	if err := buildBrokerPlane(r, p); err != nil {
		return nil, err
	}
	p.Databases = r.databases
	return p, nil
}

// Function returns the function named name, or nil.
func (p *Plan) Function(name string) *Function {
	for i := range p.Functions {
		if p.Functions[i].Name == name {
			return &p.Functions[i]
		}
	}
	return nil
}

// buildBrokerPlane adds the Brokers (and their topics), the Triggers and
// the PingSources.
func buildBrokerPlane(r *resolver, p *Plan) error {
	brokers, topics, err := buildBrokers(r)
	if err != nil {
		return err
	}
	p.Brokers, p.Topics = brokers, append(p.Topics, topics...)
	if p.Triggers, err = buildTriggers(r); err != nil {
		return err
	}
	p.Pings, err = buildPings(r)
	return err
}
