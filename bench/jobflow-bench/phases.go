package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jobflow/jobflow/pkg/jobs/job"
)

func (b *bench) run() error {
	b.say("building pgsink and chsink")
	if err := buildSinks(b.o.Root, b.o.engineDir(), "pgsink", "chsink"); err != nil {
		return err
	}
	type part struct {
		name string
		run  func() error
	}
	for _, p := range []part{
		{"raw", b.raw},
		{"sinks", b.sinks},
		{"naive", b.naive},
		{"latency", b.latency},
	} {
		if !b.o.wants(p.name) && !(p.name == "sinks" && b.o.wants("kafka-engine")) {
			continue
		}
		if err := p.run(); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		runtime.GC()
	}
	return nil
}

// raw measures the databases' limits, three times each into a fresh
// table: the median is the limit (one short run moved by ±25 % on a
// shared VM), the range goes in the note.
func (b *bench) raw() error {
	ctx := b.ctx
	rows := benchRows(b.o.PGRows, time.Now())
	took, note, err := median3(func() (time.Duration, error) {
		url, err := freshPostgres(ctx, b.o.PostgresURL, "bench_raw")
		if err != nil {
			return 0, err
		}
		return rawCopyFrom(ctx, url, rows)
	}, len(rows))
	if err != nil {
		return err
	}
	b.add(result{name: "raw CopyFrom", what: "PostgreSQL limit: one CopyFrom into jobs (median of 3)", rows: len(rows), took: took, note: note})
	lines := benchLines(b.o.CHRows, time.Now())
	took, note, err = median3(func() (time.Duration, error) {
		if err := freshClickHouse(ctx, b.o.ClickHouseAddr, "bench_raw"); err != nil {
			return 0, err
		}
		return rawPrepareBatch(ctx, b.o.ClickHouseAddr, "bench_raw", lines, 100_000)
	}, len(lines))
	if err != nil {
		return err
	}
	b.add(result{name: "raw PrepareBatch", what: "ClickHouse limit: PrepareBatch of 100k into job_events (median of 3)", rows: len(lines), took: took, note: note})
	return nil
}

// median3 runs f three times and returns the median time and the range of
// rates for n rows.
func median3(f func() (time.Duration, error), n int) (time.Duration, string, error) {
	var ts []time.Duration
	for range 3 {
		t, err := f()
		if err != nil {
			return 0, "", err
		}
		ts = append(ts, t)
	}
	slices.Sort(ts)
	rate := func(t time.Duration) float64 { return float64(n) / t.Seconds() }
	return ts[1], fmt.Sprintf("runs: %.0f–%.0f rows/s", rate(ts[2]), rate(ts[0])), nil
}

// loaded is a fresh broker holding recs in their topic.
func (b *bench) loaded(recs *heldRecords) (*broker, error) {
	br, err := newBroker()
	if err != nil {
		return nil, err
	}
	p, err := newProducer(br.addrs)
	if err != nil {
		br.Close()
		return nil, err
	}
	defer p.Close()
	start := time.Now()
	if err := p.send(recs); err != nil {
		br.Close()
		return nil, err
	}
	b.say("loaded %d records into %s in %s (%.0f/s)", recs.Len(), recs.topic, time.Since(start).Round(time.Millisecond),
		float64(recs.Len())/time.Since(start).Seconds())
	return br, nil
}

// sinkRun drains a loaded topic through one sink function of the engine.
type sinkRun struct {
	name, what, function, chDB string
	pgDB                       string
	env                        map[string]string
	recs                       *heldRecords
	want                       int
	max                        time.Duration
	// then runs on the same broker after the engine stopped.
	then func(br *broker) error
}

func (b *bench) drainRun(r sinkRun) error {
	ctx := b.ctx
	br, err := b.loaded(r.recs)
	if err != nil {
		return err
	}
	defer br.Close()
	var count counter
	var closeCount func()
	pgURL := b.o.PostgresURL
	if r.function == "pgsink" {
		if pgURL, err = freshPostgres(ctx, b.o.PostgresURL, r.pgDB); err != nil {
			return err
		}
		count, closeCount, err = pgCounter(ctx, pgURL)
	} else {
		if err = freshClickHouse(ctx, b.o.ClickHouseAddr, r.chDB); err != nil {
			return err
		}
		count, closeCount, err = chCounter(b.o.ClickHouseAddr, r.chDB, "job_events")
	}
	if err != nil {
		return err
	}
	defer closeCount()
	self0, children0 := cpuTimes()
	brokerCPU0 := br.cpu()
	eng, err := startEngine(b.o, br.addrs, pgURL, r.chDB, r.env, r.function)
	if err != nil {
		return err
	}
	stopWatch := b.watch(eng, r.function)
	// Progress is read from the engine's delivery count, not by polling
	// the database: a delivery is acknowledged only once its row is
	// committed, and polling count() every 25 ms cost the databases a
	// good part of a core (a full scan each time in PostgreSQL). The
	// database's own count is checked once at the end.
	delivered := func(context.Context) int { return int(eng.eng.Status().Sources[r.function+"-source"].Delivered) }
	d, err := measureDrain(ctx, delivered, 10*time.Millisecond, r.want, 2*time.Minute, r.max)
	stopWatch()
	if err == nil && d.Reached >= r.want {
		if n, werr := waitCount(ctx, count, r.want, 30*time.Second); werr != nil {
			err = fmt.Errorf("all %d events delivered, but the database holds %d rows: %w", r.want, n, werr)
		}
	}
	st := eng.eng.Status().Sources[r.function+"-source"]
	writes := writesNote(eng, r.function)
	if stopErr := eng.stop(); err == nil && stopErr != nil {
		err = stopErr
	}
	self1, children1 := cpuTimes()
	brokerCPU := br.cpu() - brokerCPU0
	if err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	note := fmt.Sprintf("retries %d, dead-lettered %d; CPU per 1k events: engine %.1f ms, broker %.1f ms, %s %.1f ms",
		st.Failures, st.DeadLettered, perK(self1-self0, d.Reached), perK(brokerCPU, d.Reached), r.function, perK(children1-children0, d.Reached)) + writes
	if d.Reached < r.want {
		note = fmt.Sprintf("stopped after %s with %d of %d rows; ", r.max, d.Reached, r.want) + note
	} else if r.function == "chsink" {
		distinct, err := b.distinctEvents(r.chDB)
		if err != nil {
			return err
		}
		note = fmt.Sprintf("%d rows, %d after FINAL; ", d.Reached, distinct) + note
		if distinct != r.want {
			return fmt.Errorf("%s: %d distinct events in ClickHouse, want %d", r.name, distinct, r.want)
		}
	} else if n := count(ctx); n != r.want {
		return fmt.Errorf("%s: %d jobs in PostgreSQL, want %d", r.name, n, r.want)
	}
	b.add(result{name: r.name, what: r.what, rows: d.Rows, took: d.Took, note: note})
	if r.then != nil {
		return r.then(br)
	}
	return nil
}

func (b *bench) distinctEvents(db string) (int, error) {
	c, err := clickhouseConn(b.o.ClickHouseAddr, db)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var n uint64
	if err := c.QueryRow(b.ctx, "SELECT count() FROM job_events FINAL").Scan(&n); err != nil {
		return 0, fmt.Errorf("count FINAL: %w", err)
	}
	return int(n), nil
}

func (b *bench) sinks() error {
	if b.o.wants("sinks") && slices.Contains(b.o.Sinks, "pgsink") {
		recs, err := rowRecords(benchRows(b.o.PGRows, time.Now()))
		if err != nil {
			return err
		}
		if err := b.drainRun(sinkRun{name: "pgsink", what: "our PostgreSQL sink, Kafka → engine → pgsink (group commit)",
			function: "pgsink", pgDB: "bench_pgsink", recs: recs, want: recs.Len(), max: 10 * time.Minute}); err != nil {
			return err
		}
		runtime.GC()
	}
	chsink := b.o.wants("sinks") && slices.Contains(b.o.Sinks, "chsink")
	if !chsink && !b.o.wants("kafka-engine") {
		return nil
	}
	recs, err := lineRecords(benchLines(b.o.CHRows, time.Now()))
	if err != nil {
		return err
	}
	kafkaEngine := func(br *broker) error {
		if !b.o.wants("kafka-engine") {
			return nil
		}
		return b.kafkaEngineDrain(br, recs.Len())
	}
	if !chsink { // the Kafka engine alone
		br, err := b.loaded(recs)
		if err != nil {
			return err
		}
		defer br.Close()
		return kafkaEngine(br)
	}
	return b.drainRun(sinkRun{name: "chsink", what: "our ClickHouse sink, Kafka → engine → chsink (group commit)",
		function: "chsink", chDB: "bench_chsink", recs: recs, want: recs.Len(), max: 10 * time.Minute, then: kafkaEngine})
}

// kafkaEngineDrain lets ClickHouse's Kafka engine read the loaded CSV topic.
func (b *bench) kafkaEngineDrain(br *broker, want int) error {
	ctx := b.ctx
	start := time.Now()
	ke, err := startKafkaEngine(ctx, b.o.ClickHouseAddr, "bench_kafka", br.addrs, "clickhouse-kafka-engine")
	if err != nil {
		return err
	}
	defer func() { _ = ke.stop(context.Background()) }()
	count, closeCount, err := chCounter(b.o.ClickHouseAddr, "bench_kafka", "job_events")
	if err != nil {
		return err
	}
	defer closeCount()
	// Polled every 100 ms: count() costs ClickHouse CPU the engine needs.
	d, err := measureDrain(ctx, count, 100*time.Millisecond, want, 2*time.Minute, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("kafka engine: %w", err)
	}
	whole := time.Since(start)
	distinct, err := b.distinctEvents("bench_kafka")
	if err != nil {
		return err
	}
	// The engine writes blocks of up to 65,536 rows, so the first rows
	// appear late and in bulk: its rate counts from CREATE TABLE (group join
	// and the first poll included) to the last row.
	b.add(result{name: "ClickHouse Kafka engine", what: "ClickHouse 18.16's Kafka table engine + materialized view, same topic",
		rows: d.Reached, took: whole, note: fmt.Sprintf("%d rows after FINAL; counted from CREATE TABLE; rows first seen %s before the last",
			distinct, d.Took.Round(time.Millisecond))})
	return nil
}

func (b *bench) naive() error {
	n := b.o.NaiveRows
	pgRecs, err := rowRecords(benchRows(n, time.Now()))
	if err != nil {
		return err
	}
	chRecs, err := lineRecords(benchLines(n, time.Now()))
	if err != nil {
		return err
	}
	for _, flushers := range []int{1, 4} {
		suffix, what := "", "one event per request, one row per transaction, one at a time (JOBFLOW_ONE_EVENT_PER_REQUEST=true, BATCH_MAX_ITEMS=1, BATCH_FLUSHERS=1)"
		if flushers > 1 {
			suffix, what = " ×4", "one event per request, one row per transaction, 4 at once (JOBFLOW_ONE_EVENT_PER_REQUEST=true, BATCH_MAX_ITEMS=1, BATCH_FLUSHERS=4)"
		}
		fl := itoa(flushers)
		if err := b.drainRun(sinkRun{name: "naive pgsink" + suffix, what: "naive PostgreSQL sink: " + what,
			function: "pgsink", pgDB: "bench_naive", recs: pgRecs, want: n, max: b.o.NaiveFor,
			env: map[string]string{"PGSINK_BATCH_MAX_ITEMS": "1", "PGSINK_BATCH_FLUSHERS": fl, "PGSINK_BATCH_LINGER": "0s", "JOBFLOW_ONE_EVENT_PER_REQUEST": "true"}}); err != nil {
			return err
		}
		if err := b.drainRun(sinkRun{name: "naive chsink" + suffix, what: "naive ClickHouse sink: " + what,
			function: "chsink", chDB: "bench_naive", recs: chRecs, want: n, max: b.o.NaiveFor,
			env: map[string]string{"CHSINK_BATCH_MAX_ITEMS": "1", "CHSINK_BATCH_FLUSHERS": fl, "CHSINK_BATCH_LINGER": "0s", "JOBFLOW_ONE_EVENT_PER_REQUEST": "true"}}); err != nil {
			return err
		}
	}
	return nil
}

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

// maker makes a run's records ahead of time, so that making them does not
// take the CPU the run measures.
type maker struct {
	fn    string
	recs  *heldRecords
	lines []job.EventLine
}

// prepare makes n records (at(0) ... at(n-1)).
func (m *maker) prepare(n int) (err error) {
	if m.fn == "pgsink" {
		m.recs, err = rowRecords(benchRows(n, time.Now()))
		return err
	}
	// Create and finish of each job in turn; the line's ts (which the
	// Kafka engine's latency is read from) is written when it is sent.
	m.lines = benchLines(n, time.Now())
	m.recs, err = lineRecords(m.lines)
	return err
}

// at is record i, stamped with the time it is sent (the Kafka timestamp
// the latency is measured from is set by the producer). A CSV line's ts
// and ts_ms are written over its held bytes (they keep their width), so
// that the producer's side costs a few hundred ns a record, not an
// encoding: the load it adds shares the cores with what is measured.
func (m *maker) at(i int) (*kgo.Record, error) {
	r := m.recs.At(i)
	if m.lines != nil {
		now := time.Now()
		if !stampCSV(r.Value, now) {
			m.lines[i].TS = now
			r.Value = job.EncodeCSV(m.lines[i])
		}
	}
	return r, nil
}

// stampCSV writes t as the ts and ts_ms of the CSV line in v, in place,
// if the ones there have the same width (false: v is left as it was).
func stampCSV(v []byte, t time.Time) bool {
	// job_id (a UUID's 36 characters), event, ts, ts_ms, ...
	if len(v) < 37 || v[36] != ',' {
		return false
	}
	e := bytes.IndexByte(v[37:], ',')
	if e < 0 {
		return false
	}
	ts := v[37+e+1:]
	const layout = "2006-01-02 15:04:05" // job's csvTime
	const tsLen = len(layout)
	if len(ts) < tsLen+1 || ts[tsLen] != ',' {
		return false
	}
	msField := ts[tsLen+1:]
	n := bytes.IndexByte(msField, ',')
	t = t.UTC()
	var scratch [40]byte
	text := t.AppendFormat(scratch[:0], layout)
	ms := strconv.AppendInt(text, t.UnixMilli(), 10)[len(text):]
	if len(text) != tsLen || n != len(ms) {
		return false
	}
	copy(ts, text)
	copy(msField, ms)
	return true
}

// warmFor is the number of records of the warm-up at rate (5 s, even:
// chsink events come in create+finish pairs).
func warmFor(rate int) int { return max(rate*5, 1000) &^ 1 }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// cpuTimes are the CPU seconds (user+system) of this process (engine,
// KafkaSource dispatcher) and of its ended children (functions).
func cpuTimes() (self, children float64) {
	var ru syscall.Rusage
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = tv(ru.Utime) + tv(ru.Stime)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	children = tv(ru.Utime) + tv(ru.Stime)
	return
}

func perK(sec float64, events int) float64 {
	if events == 0 {
		return 0
	}
	return sec * 1000 * 1000 / float64(events)
}

// watch prints the function's scale and its source's state every 2 s
// when BENCH_DEBUG is set (debug.go).
func (b *bench) watch(eng *engineRun, function string) func() {
	if !debugging {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			st := eng.eng.Status()
			fs, _ := json.Marshal(st.Functions[function])
			h := deliveryHistogram(function + "-source")
			b.say("debug %s: %s source %+v delivery p50 %s p99 %s", function, fs, st.Sources[function+"-source"], ms(h.quantile(0.5)), ms(h.quantile(0.99)))
		}
	}()
	return func() { close(done) }
}

// timeline prints, every second of a latency run (250 ms with
// BENCH_DEBUG), the records acknowledged in it with their latency, what is
// in flight, and the records produced with the slowest send-to-broker
// acknowledgement, so that a p99 can be told from a stall and a stall
// placed.
func (b *bench) timeline(eng *engineRun, fn string, p *producer) func() {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		step := time.Second
		if debugging {
			step = 250 * time.Millisecond
		}
		t := time.NewTicker(step)
		defer t.Stop()
		prev, prevD := recordHistogram(fn+"-source"), deliveryHistogram(fn+"-source")
		prevW := map[string]histogram{}
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case <-t.C:
			}
			cur, curD := recordHistogram(fn+"-source"), deliveryHistogram(fn+"-source")
			h, d := cur.since(prev), curD.since(prevD)
			prev, prevD = cur, curD
			st := eng.eng.Status().Sources[fn+"-source"]
			acks := p.takeAcks()
			var ackMax time.Duration
			for _, a := range acks {
				ackMax = max(ackMax, a)
			}
			writes := ""
			if debugging {
				writes = b.sinkWrites(eng, fn, prevW)
			}
			b.say("  %s %5.2fs: %6d acknowledged, p50 %s, p99 %s, max ≤ %s (the HTTP delivery: p99 %s); in flight %d; produced %d, slowest %s%s", fn, float64(i)*step.Seconds(), h.count,
				ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.quantile(1)), ms(d.quantile(0.99)), st.InFlight, len(acks), ms(ackMax), writes)
		}
	}()
	return func() { close(done); <-stopped }
}

// sinkWrites tells the writes each instance of the sink fn made since the
// last call (from its /metrics: jobflow_sink_batch_duration_seconds and
// jobflow_sink_batch_size); prev keeps the last snapshots.
func (b *bench) sinkWrites(eng *engineRun, fn string, prev map[string]histogram) string {
	sc := eng.eng.Status().Functions[fn].Scale
	if sc == nil {
		return ""
	}
	var out strings.Builder
	for _, in := range sc.PerInstance {
		d := instanceHistogram(in.URL, "jobflow_sink_batch_duration_seconds", "function", fn)
		n := instanceHistogram(in.URL, "jobflow_sink_batch_size", "function", fn)
		dd, nd := d.since(prev["d"+in.URL]), n.since(prev["n"+in.URL])
		prev["d"+in.URL], prev["n"+in.URL] = d, n
		if dd.count > 0 {
			fmt.Fprintf(&out, "; instance %d: %d writes of %.0f rows, p50 %s, p99 %s", in.Slot, dd.count, nd.sum/float64(max(nd.count, 1)),
				ms(dd.quantile(0.5)), ms(dd.quantile(0.99)))
		}
	}
	return out.String()
}

// writesNote tells how many writes the running instances of the sink fn
// made and their mean size (from their /metrics).
func writesNote(eng *engineRun, fn string) string {
	sc := eng.eng.Status().Functions[fn].Scale
	if sc == nil {
		return ""
	}
	var writes, rows float64
	for _, in := range sc.PerInstance {
		n := instanceHistogram(in.URL, "jobflow_sink_batch_size", "function", fn)
		writes += float64(n.count)
		rows += n.sum
	}
	if writes == 0 {
		return ""
	}
	return fmt.Sprintf("; %.0f writes of %.0f rows from %d instances", writes, rows/writes, len(sc.PerInstance))
}

// scaleNote tells how the function's pool moved during a run.
func scaleNote(eng *engineRun, fn string) string {
	sc := eng.eng.Status().Functions[fn].Scale
	if sc == nil {
		return ""
	}
	return fmt.Sprintf("; instances %d, cold starts %d, requests held %d", sc.Instances, sc.ColdStarts, sc.HeldTotal)
}
