package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jobflow/jobflow/internal/manifest"
)

// ClusterSinkHost is the host of Knative's KafkaSink ingress on a cluster;
// URLs to it (in func.yaml envs) are rewritten to the engine's ingress.
const ClusterSinkHost = "kafka-sink-ingress.knative-eventing.svc.cluster.local"

// resolver maps what the manifests name on a cluster to local addresses.
type resolver struct {
	topo *manifest.Topology
	s    Settings
	at   Addresses
	// clusterKafka holds the bootstrap servers the manifests name; env
	// values naming them become the local brokers.
	clusterKafka map[string]bool
	databases    []string          // local databases named so far
	keys         map[string]string // generated signing keys (keys.go) by <secret>.<key>
}

func newResolver(topo *manifest.Topology, s Settings, at Addresses) *resolver {
	r := &resolver{topo: topo, s: s, at: at, clusterKafka: map[string]bool{}}
	for _, src := range topo.Sources {
		for _, b := range src.Spec.BootstrapServers {
			r.clusterKafka[b] = true
		}
	}
	for _, k := range topo.Sinks {
		for _, b := range k.Spec.BootstrapServers {
			r.clusterKafka[b] = true
		}
	}
	for _, c := range topo.ConfigMaps {
		if v := c.Data["bootstrap.servers"]; v != "" {
			r.clusterKafka[v] = true
		}
	}
	return r
}

func (r *resolver) ns(ns string) string {
	if ns == "" {
		return r.s.Namespace
	}
	return ns
}

func (r *resolver) ingressURL() string { return "http://" + r.at.Ingress }

// functionURL is where a function's activator serves.
func (r *resolver) functionURL(name string) (string, error) {
	addr, ok := r.at.Functions[name]
	if !ok {
		return "", fmt.Errorf("function %s has no address", name)
	}
	return "http://" + addr, nil
}

// url resolves a manifest destination to a local URL.
func (r *resolver) url(d manifest.Destination) (string, error) {
	t, err := r.topo.Target(d)
	if err != nil {
		return "", err
	}
	switch {
	case t.URI != "":
		return r.rewrite(t.URI), nil
	case t.Sink != "":
		s := r.topo.Sink(t.Sink)
		return r.ingressURL() + "/" + r.ns(s.Namespace) + "/" + s.Name + t.Path, nil
	case t.Broker != "":
		b := r.topo.Broker(t.Broker)
		return r.brokerURL(r.ns(b.Namespace), b.Name) + t.Path, nil
	case t.Function != "":
		u, err := r.functionURL(t.Function)
		if err != nil {
			return "", err
		}
		return u + t.Path, nil
	}
	return "", errors.New("empty target")
}

// rewrite points cluster addresses at local ones: the KafkaSink and
// Broker ingresses at the engine's, a function's Knative Service
// (http://<function>.<namespace>.svc.cluster.local) at its activator, the
// Kafka bootstrap servers at the local brokers.
func (r *resolver) rewrite(v string) string {
	for _, scheme := range []string{"http://", "https://"} {
		if rest, ok := strings.CutPrefix(v, scheme+ClusterSinkHost); ok {
			return r.ingressURL() + rest
		}
		if rest, ok := strings.CutPrefix(v, scheme+ClusterBrokerHost); ok {
			return "http://" + r.at.BrokerIngress + rest
		}
		if u, ok := r.serviceURL(strings.TrimPrefix(v, scheme)); ok && strings.HasPrefix(v, scheme) {
			return u
		}
	}
	if r.clusterKafka[v] {
		return strings.Join(r.at.Brokers, ",")
	}
	return v
}

// serviceURL is the local URL of hostPath when its host is a function's
// cluster-local Service name in the engine's namespace.
func (r *resolver) serviceURL(hostPath string) (string, bool) {
	host, path, _ := strings.Cut(hostPath, "/")
	name, ok := strings.CutSuffix(host, "."+r.s.Namespace+".svc.cluster.local")
	if !ok {
		return "", false
	}
	u, err := r.functionURL(name)
	if err != nil {
		return "", false
	}
	if path != "" {
		u += "/" + path
	}
	return u, true
}
