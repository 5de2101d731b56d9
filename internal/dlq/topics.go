package dlq

import (
	"sort"

	"github.com/jobflow/jobflow/internal/manifest"
)

// Topics are the topics of every KafkaSink that a KafkaSource, Trigger or
// Broker of t names as its dead-letter sink.
func Topics(t *manifest.Topology) []string {
	var deliveries []*manifest.Delivery
	for _, s := range t.Sources {
		deliveries = append(deliveries, s.Spec.Delivery)
	}
	for _, tr := range t.Triggers {
		deliveries = append(deliveries, tr.Spec.Delivery)
	}
	for _, b := range t.Brokers {
		deliveries = append(deliveries, b.Spec.Delivery)
	}
	seen := map[string]bool{}
	var topics []string
	for _, d := range deliveries {
		if d == nil || d.DeadLetterSink == nil || d.DeadLetterSink.Ref == nil || d.DeadLetterSink.Ref.Kind != manifest.KindKafkaSink {
			continue
		}
		for _, s := range t.Sinks {
			if s.Name == d.DeadLetterSink.Ref.Name && !seen[s.Spec.Topic] {
				seen[s.Spec.Topic] = true
				topics = append(topics, s.Spec.Topic)
			}
		}
	}
	sort.Strings(topics)
	return topics
}
