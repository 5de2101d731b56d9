package plan

import (
	"fmt"

	"github.com/jobflow/jobflow/internal/manifest"
)

// Select narrows topo to the named functions (none: all), the sources
// and bindings that refer to them, and the triggers and PingSources that
// do not deliver to another function; adapters and brokers stay.
func Select(topo *manifest.Topology, names []string) error {
	if len(names) == 0 {
		return nil
	}
	keep := map[string]bool{}
	for _, n := range names {
		if topo.Function(n) == nil {
			return fmt.Errorf("no function %q in functions/", n)
		}
		keep[n] = true
	}
	var fs []manifest.Function
	for _, f := range topo.Functions {
		if keep[f.Name] {
			fs = append(fs, f)
		}
	}
	var ss []manifest.KafkaSource
	for _, s := range topo.Sources {
		if s.Spec.Sink.Ref != nil && keep[s.Spec.Sink.Ref.Name] {
			ss = append(ss, s)
		}
	}
	var bs []manifest.SinkBinding
	for _, b := range topo.Bindings {
		if keep[b.Spec.Subject.Name] {
			bs = append(bs, b)
		}
	}
	var ts []manifest.Trigger
	for _, t := range topo.Triggers {
		if kept(t.Spec.Subscriber, keep) {
			ts = append(ts, t)
		}
	}
	var ps []manifest.PingSource
	for _, p := range topo.PingSources {
		if kept(p.Spec.Sink, keep) {
			ps = append(ps, p)
		}
	}
	topo.Functions, topo.Sources, topo.Bindings = fs, ss, bs
	topo.Triggers, topo.PingSources = ts, ps
	return nil
}

// kept reports whether d is not a function or one of keep.
func kept(d manifest.Destination, keep map[string]bool) bool {
	return d.Ref == nil || d.Ref.Kind != manifest.KindService || keep[d.Ref.Name]
}
