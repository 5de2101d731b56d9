package console

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ingressCounts adds the events the KafkaSink and Broker ingresses took
// (their jobflow_sink_events_total and jobflow_broker_events_total with
// result ok) to counts.
func ingressCounts(counts map[string]int64) {
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil && len(families) == 0 {
		return
	}
	for _, f := range families {
		var kind, label string
		switch f.GetName() {
		case "jobflow_sink_events_total":
			kind, label = "sink", "sink"
		case "jobflow_broker_events_total":
			kind, label = "broker", "broker"
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			var name, result string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case label:
					name = l.GetValue()
				case "result":
					result = l.GetValue()
				}
			}
			if result == "ok" && name != "" {
				counts[kind+"/"+name+"/accepted"] += int64(m.GetCounter().GetValue())
			}
		}
	}
}
