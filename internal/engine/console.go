package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/jobflow/jobflow/internal/console"
	"github.com/jobflow/jobflow/internal/dlq"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// newConsole is the live console of the running plan (served on the
// admin port).
func (e *Engine) newConsole(brokers []string) *console.Console {
	p := e.Plan()
	dead := console.NewGraph(p).DeadLetterTopics
	cfg := console.Config{Plan: p, Brokers: brokers, Sample: e.consoleSample, Log: e.log}
	if e.traces != nil {
		cfg.Traces = e.traces.Find
	}
	if len(dead) > 0 {
		cfg.Redrive = e.redriver(brokers, dead)
	}
	return console.New(cfg)
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

// redriver redrives dead letters of the plan's dead-letter topics with
// internal/dlq, each with the delivery policy of the source or trigger
// whose target is its destination (Knative's defaults for another).
func (e *Engine) redriver(brokers []string, topics []string) console.Redriver {
	return func(ctx context.Context, ids []console.RecordID) (console.RedriveResult, error) {
		var res console.RedriveResult
		f := dlq.Filter{}
		for _, id := range ids {
			f.Refs = append(f.Refs, dlq.Ref{Topic: id.Topic, Partition: id.Partition, Offset: id.Offset})
		}
		letters, err := dlq.Read(ctx, dlq.Source{Brokers: brokers, Topics: topics}, f, len(ids))
		if err != nil {
			return res, err
		}
		if len(letters) != len(ids) {
			return res, fmt.Errorf("%d of the %d letters found", len(letters), len(ids))
		}
		r, err := dlq.NewRedriver(brokers, delivery.Defaults)
		if err != nil {
			return res, err
		}
		defer r.Close()
		var results []dlq.Result
		for _, l := range letters {
			r.Policy = e.policyOf(l.Destination)
			out, err := r.Redrive(ctx, l)
			if err != nil {
				return res, fmt.Errorf("letter %s: %w", l.Ref, err)
			}
			results = append(results, out)
			switch out.Outcome {
			case dlq.Delivered:
				res.Delivered++
			case dlq.DeadLettered:
				res.DeadLettered++
			default:
				res.Aborted++
			}
		}
		res.Results = results
		return res, nil
	}
}

// policyOf is the delivery policy of the source or trigger delivering to
// target.
func (e *Engine) policyOf(target string) delivery.Policy {
	p := e.Plan()
	target = strings.TrimSuffix(target, "/")
	for _, s := range p.Sources {
		if strings.TrimSuffix(s.Target, "/") == target {
			return s.Policy
		}
	}
	for _, t := range p.Triggers {
		if strings.TrimSuffix(t.Target, "/") == target {
			return t.Policy
		}
	}
	return delivery.Defaults
}
