package plan

import (
	"fmt"

	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/pingsource"
)

// buildPings resolves each PingSource's sink and checks its spec as
// Knative's webhook does (schedule, timezone, data).
func buildPings(r *resolver) ([]pingsource.Ping, error) {
	var ps []pingsource.Ping
	for _, mp := range r.topo.PingSources {
		p, err := buildPing(r, mp)
		if err != nil {
			return nil, fmt.Errorf("pingsource %s: %w", mp.Name, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func buildPing(r *resolver, mp manifest.PingSource) (pingsource.Ping, error) {
	spec := pingsource.Spec{
		Namespace: r.ns(mp.Namespace), Name: mp.Name,
		Schedule: mp.Spec.Schedule, Timezone: mp.Spec.Timezone, ContentType: mp.Spec.ContentType,
		Data: mp.Spec.Data, DataBase64: mp.Spec.DataBase64,
	}
	if _, _, err := spec.Check(); err != nil {
		return pingsource.Ping{}, err
	}
	sink, err := r.url(mp.Spec.Sink)
	if err != nil {
		return pingsource.Ping{}, fmt.Errorf("sink: %w", err)
	}
	return pingsource.Ping{Spec: spec, Sink: sink}, nil
}
