package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"
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
		{"e2e", b.endToEnd},
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
