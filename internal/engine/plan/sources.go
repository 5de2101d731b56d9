package plan

import (
	"fmt"

	"github.com/jobflow/jobflow/internal/manifest"
)

func buildSources(r *resolver) ([]Source, error) {
	var ss []Source
	for _, ms := range r.topo.Sources {
		s, err := buildSource(r, ms)
		if err != nil {
			return nil, fmt.Errorf("kafkasource %s: %w", ms.Name, err)
		}
		ss = append(ss, s)
	}
	return ss, nil
}

func buildSource(r *resolver, ms manifest.KafkaSource) (Source, error) {
	policy, err := manifest.DeliveryPolicy(ms.Spec.Delivery)
	if err != nil {
		return Source{}, err
	}
	target, err := r.url(ms.Spec.Sink)
	if err != nil {
		return Source{}, fmt.Errorf("sink: %w", err)
	}
	var dls string
	if d := ms.Spec.Delivery; d != nil && d.DeadLetterSink != nil {
		if dls, err = r.url(*d.DeadLetterSink); err != nil {
			return Source{}, fmt.Errorf("deadLetterSink: %w", err)
		}
	}
	ordered, byKey, err := ms.Order()
	if err != nil {
		return Source{}, err
	}
	maxInFlight, err := ms.MaxInFlight()
	if err != nil {
		return Source{}, err
	}
	batchSize, err := ms.BatchSize()
	if err != nil {
		return Source{}, err
	}
	if r.s.OneEventPerRequest {
		batchSize = 1
	}
	return Source{
		Name: ms.Name, Namespace: r.ns(ms.Namespace), Topics: ms.Spec.Topics,
		Group: ms.Spec.ConsumerGroup, InitialOffset: ms.Spec.InitialOffset, Ordered: ordered, ByKey: byKey,
		MaxInFlight: maxInFlight, BatchSize: batchSize, Policy: policy,
		Target: target, DeadLetter: dls,
	}, nil
}
