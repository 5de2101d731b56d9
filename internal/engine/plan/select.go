package plan

import (
	"fmt"

	"github.com/jobflow/jobflow/internal/manifest"
)

// Select narrows topo to the named functions (none: all) and the sources
// and bindings that refer to them; adapters stay.
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
	topo.Functions, topo.Sources, topo.Bindings = fs, ss, bs
	return nil
}
