package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latency first measures what each sink sustains while it is fed (its
// fed capacity: records produced at the rate it drained a loaded topic,
// so that producer, broker ingest, engine, sink and database share the
// cores as in live traffic), then feeds it at fractions of that
// (BENCH_LOADS) and reads the engine's latency histograms; last, chsink
// runs side by side with ClickHouse's Kafka engine on the same topic.
func (b *bench) latency() error {
	sinks := b.o.Sinks
	for _, fn := range sinks {
		if fed := b.o.Fed[fn]; fed > 0 {
			b.rates[fn+" fed"] = fed // given: no ramp (A/B runs at the same rates)
			continue
		}
		drained := b.rates[fn]
		if drained <= 0 {
			drained = b.o.Rates[fn]
		}
		if drained <= 0 {
			return fmt.Errorf("latency: no rate for %s (run the sinks part or set BENCH_RATES)", fn)
		}
		if err := b.feedRun(feed{fn: fn, rate: int(drained), name: fn + " fed", capacity: true}); err != nil {
			return err
		}
	}
	for _, load := range b.o.Loads {
		for _, fn := range sinks {
			if err := b.feedRun(feed{fn: fn, rate: int(b.rates[fn+" fed"] * load), name: fmt.Sprintf("%s at %.0f%% load", fn, load*100)}); err != nil {
				return err
			}
		}
	}
	if b.o.wants("kafka-engine") && len(b.o.Loads) > 0 && slices.Contains(sinks, "chsink") {
		load := b.o.Loads[len(b.o.Loads)-1]
		return b.feedRun(feed{fn: "chsink", rate: int(b.rates["chsink fed"] * load), withKafkaEngine: true,
			name: fmt.Sprintf("chsink at %.0f%% load beside the Kafka engine", load*100)})
	}
	return nil
}

// feed is one run of a sink fed by a producer at rate.
type feed struct {
	fn, name string
	rate     int
	// capacity: find the highest rate the sink sustains (ramp) instead of
	// measuring latencies; rate is then the drain rate the ramp rises to.
	capacity bool
	// withKafkaEngine: ClickHouse's Kafka engine reads the same topic.
	withKafkaEngine bool
}

// rampSteps are the fractions of the drain rate a capacity run offers in
// turn, each for rampStep, until the sink falls behind.
var rampSteps = []float64{0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}

// rampStep is how long each step of a capacity run lasts: BENCH_LATENCY_FOR/6.
func rampStep(latencyFor time.Duration) time.Duration { return max(latencyFor/6, time.Second) }

// stepRecords is how many records step k offers (even: chsink events come
// in create+finish pairs).
func (f feed) stepRecords(k int, latencyFor time.Duration) int {
	return int(float64(f.rate)*rampSteps[k]*rampStep(latencyFor).Seconds()) &^ 1
}

// records are f's warm-up and measured records (all the steps' for a
// capacity run: they follow each other without a pause).
func (f feed) records(latencyFor time.Duration) (warm, n int) {
	if f.capacity {
		for k := range rampSteps {
			n += f.stepRecords(k, latencyFor)
		}
		return max(int(float64(f.rate)*rampSteps[0]), 1000) &^ 1, n
	}
	return warmFor(f.rate), int(float64(f.rate)*latencyFor.Seconds()) &^ 1
}

// feedRun feeds f.fn at f.rate.
func (b *bench) feedRun(f feed) error {
	ctx := b.ctx
	fn, rate := f.fn, max(f.rate, 1000)
	f.rate = rate
	warm, n := f.records(b.o.LatencyFor)
	br, err := newBroker()
	if err != nil {
		return err
	}
	defer br.Close()
	var count counter
	var closeCount func()
	pgURL, chDB := b.o.PostgresURL, "bench_latency"
	if fn == "pgsink" {
		if pgURL, err = freshPostgres(ctx, b.o.PostgresURL, "bench_latency"); err != nil {
			return err
		}
		count, closeCount, err = pgCounter(ctx, pgURL)
	} else {
		if err = freshClickHouse(ctx, b.o.ClickHouseAddr, chDB); err != nil {
			return err
		}
		count, closeCount, err = chCounter(b.o.ClickHouseAddr, chDB, "job_events")
	}
	if err != nil {
		return err
	}
	defer closeCount()
	var ke *kafkaEngine
	if f.withKafkaEngine {
		if ke, err = startKafkaEngine(ctx, b.o.ClickHouseAddr, "bench_kafka_latency", br.addrs, "clickhouse-kafka-engine-latency"); err != nil {
			return err
		}
		defer func() { _ = ke.stop(context.Background()) }()
	}
	m := &maker{fn: fn}
	if err := m.prepare(warm + n); err != nil {
		return err
	}
	return b.feedEngine(f, br, pgURL, chDB, warm, n, count, m, ke)
}

func (b *bench) feedEngine(f feed, br *broker, pgURL, chDB string, warm, n int, count counter, m *maker, ke *kafkaEngine) error {
	fn, rate := f.fn, f.rate
	eng, err := startEngine(b.o, br.addrs, pgURL, chDB, nil, fn)
	if err != nil {
		return err
	}
	defer func() { _ = eng.stop() }()
	p, err := newProducer(br.addrs)
	if err != nil {
		return err
	}
	defer p.Close()
	// Warm-up, not measured: the pool starts at zero instances (min-scale
	// 0), so the first deliveries wait for a cold start and the autoscaler.
	warmRate := rate
	if f.capacity {
		warmRate = int(float64(rate) * rampSteps[0])
	}
	if err := p.paced(b.ctx, warm, warmRate, m.at); err != nil {
		return err
	}
	if _, err := waitCount(b.ctx, count, warm, 2*time.Minute); err != nil {
		return fmt.Errorf("%s warm-up: %w", fn, err)
	}
	startMS := uint64(time.Now().UnixMilli())
	before, beforeRec := deliveryHistogram(fn+"-source"), recordHistogram(fn+"-source")
	start := time.Now()
	stopStalls := stallDetector("bench")
	defer stopStalls()
	stopTimeline := b.timeline(eng, fn, p)
	if f.capacity {
		err := b.ramp(f, eng, p, count, warm, m)
		stopTimeline()
		return err
	}
	if err := p.paced(b.ctx, n, rate, func(i int) (*kgo.Record, error) { return m.at(warm + i) }); err != nil {
		stopTimeline()
		return err
	}
	produced := time.Since(start)
	_, err = waitCount(b.ctx, count, warm+n, 2*time.Minute)
	stopTimeline()
	if err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	h := deliveryHistogram(fn + "-source").since(before)
	rec := recordHistogram(fn + "-source").since(beforeRec)
	st := eng.eng.Status().Sources[fn+"-source"]
	b.add(result{name: f.name, what: fmt.Sprintf("%s fed at %d events/s for %s after a 5 s warm-up: each record's Kafka timestamp to its acknowledgement (engine histogram)", fn, rate, produced.Round(time.Second)),
		rows: n, took: produced, rate: float64(n) / produced.Seconds(),
		p50: ms(rec.quantile(0.5)), p99: ms(rec.quantile(0.99)),
		note: fmt.Sprintf("%d records observed; the HTTP delivery alone: p50 %s, p99 %s; %d batches; retries %d%s",
			rec.count, ms(h.quantile(0.5)), ms(h.quantile(0.99)), st.Batches, st.Failures, scaleNote(eng, fn))})
	if ke == nil {
		return nil
	}
	kc, closeKC, err := chCounter(b.o.ClickHouseAddr, "bench_kafka_latency", "job_events")
	if err != nil {
		return err
	}
	defer closeKC()
	// ClickHouse's Kafka engine is the comparison, not our code: rows it
	// has not written after the wait are reported, not fatal.
	short := ""
	if _, err := waitCount(b.ctx, kc, warm+n, 2*time.Minute); err != nil {
		short = fmt.Sprintf("; short: %v", err)
	}
	p50, p99, mx, got, err := ke.latencies(b.ctx, startMS)
	if err != nil {
		return err
	}
	b.add(result{name: "Kafka engine beside chsink", what: "ClickHouse Kafka engine on the same topic at the same time: row written minus event time (1 s resolution)",
		rows: int(got), took: produced, rate: float64(got) / produced.Seconds(),
		p50: fmt.Sprintf("%.1f s", p50), p99: fmt.Sprintf("%.1f s", p99), note: fmt.Sprintf("max %.1f s%s", mx, short)})
	return nil
}

// ramp offers f.fn each step's rate in turn, without a pause, and keeps
// the highest rate it sustained: the step's records (rampStep's worth) all
// produced in time, and at most a seventh of them (a quarter second's
// worth) not yet acknowledged at its end (at a sustained rate only those
// in flight are, a few tens of ms worth; past it the backlog grows by the
// excess). The sink's fed capacity is that rate, measured with the
// producer and the broker's ingest on the same cores, as in live traffic.
func (b *bench) ramp(f feed, eng *engineRun, p *producer, count counter, warm int, m *maker) error {
	step := rampStep(b.o.LatencyFor)
	delivered := func() int { return int(eng.eng.Status().Sources[f.fn+"-source"].Delivered) }
	sent, sustained := warm, 0
	var steps []string
	for k, frac := range rampSteps {
		rate, n := int(float64(f.rate)*frac), f.stepRecords(k, b.o.LatencyFor)
		start, base := time.Now(), sent
		if err := p.paced(b.ctx, n, rate, func(i int) (*kgo.Record, error) { return m.at(base + i) }); err != nil {
			return err
		}
		produced := time.Since(start)
		sent += n
		behind := sent - delivered()
		ok := produced <= step+step/10 && behind <= n/7
		steps = append(steps, fmt.Sprintf("%d/s: %d behind after %s", rate, behind, produced.Round(10*time.Millisecond)))
		b.say("  %s ramp %d/s: produced in %s, %d not yet acknowledged: %s", f.fn, rate, produced.Round(10*time.Millisecond), behind,
			map[bool]string{true: "sustained", false: "falls behind"}[ok])
		if !ok {
			break
		}
		sustained = rate
	}
	if _, err := waitCount(b.ctx, count, sent, 2*time.Minute); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if sustained == 0 {
		return fmt.Errorf("%s: not even %d events/s sustained (%s)", f.name, int(float64(f.rate)*rampSteps[0]), strings.Join(steps, "; "))
	}
	b.add(result{name: f.name, what: fmt.Sprintf("%s fed at rising rates (%.0f-%.0f %% of the %d/s it drained, %s each) until it falls behind: the highest rate sustained", f.fn,
		100*rampSteps[0], 100*rampSteps[len(rampSteps)-1], f.rate, step.Round(10*time.Millisecond)),
		rows: int(float64(sustained) * step.Seconds()), took: step, rate: float64(sustained),
		note: strings.Join(steps, "; ") + scaleNote(eng, f.fn)})
	return nil
}
