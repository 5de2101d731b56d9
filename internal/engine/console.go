package engine

import (
	"github.com/jobflow/jobflow/internal/console"
	"github.com/jobflow/jobflow/internal/kafkasource"
)

// newConsole is the live console of the running plan (served on the
// admin port).
func (e *Engine) newConsole(brokers []string) *console.Console {
	return console.New(console.Config{Plan: e.Plan(), Brokers: brokers, Sample: e.consoleSample, Log: e.log})
}

// consoleSample is the status with the counts the console's edges name.
func (e *Engine) consoleSample() console.Sample {
	st := e.Status()
	counts := map[string]int64{}
	add := func(kind string, stats map[string]kafkasource.Stats) {
		for n, s := range stats {
			p := kind + "/" + n + "/"
			counts[p+"delivered"] = s.Delivered
			counts[p+"dead_lettered"] = s.DeadLettered
			counts[p+"in_flight"] = s.InFlight
			counts[p+"taken"] = s.Delivered + s.DeadLettered + s.Dropped + s.Filtered + s.InFlight
		}
	}
	add(console.KindSource, st.Sources)
	add(console.KindTrigger, st.Triggers)
	for n, p := range st.Pings {
		counts[console.KindPing+"/"+n+"/delivered"] = p.Delivered
	}
	return console.Sample{Status: st, Counts: counts}
}
