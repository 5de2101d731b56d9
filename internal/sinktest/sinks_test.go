package sinktest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
)

const (
	pgTopic = "postgres-topic"
	chTopic = "clickhouse-topic"
)

// records are CloudEvents in binary mode, as the KafkaSink ingress writes them.
func records(t *testing.T, topic string, events []event.Event) []*sarama.ProducerMessage {
	t.Helper()
	out := make([]*sarama.ProducerMessage, len(events))
	for i := range events {
		pm := &sarama.ProducerMessage{Topic: topic}
		if err := kafka_sarama.WriteProducerMessage(binding.WithForceBinary(context.Background()), binding.ToMessage(&events[i]), pm); err != nil {
			t.Fatal(err)
		}
		out[i] = pm
	}
	return out
}

func newEvent(t *testing.T, id, typ, key, contentType string, data []byte) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("/jobflow/sinktest")
	e.SetType(typ)
	e.SetTime(time.Now().UTC())
	e.SetExtension("partitionkey", key)
	if err := e.SetData(contentType, data); err != nil {
		t.Fatal(err)
	}
	return e
}

func rowEvents(t *testing.T, rows []job.Row, idPrefix string) []event.Event {
	out := make([]event.Event, len(rows))
	for i, r := range rows {
		data, err := job.EncodeRow(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = newEvent(t, idPrefix+r.ID.String(), job.TypeRow, r.ID.String(), event.ApplicationJSON, data)
	}
	return out
}

func lineEvents(t *testing.T, lines []job.EventLine) []event.Event {
	out := make([]event.Event, len(lines))
	for i, l := range lines {
		out[i] = newEvent(t, l.EventID, job.TypeCSV, l.JobID.String(), "text/csv", job.EncodeCSV(l))
	}
	return out
}

func produce(t *testing.T, p sarama.SyncProducer, recs []*sarama.ProducerMessage) {
	t.Helper()
	for lo := 0; lo < len(recs); lo += 500 {
		if err := p.SendMessages(recs[lo:min(lo+500, len(recs))]); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, max time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(max)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", max, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSinksKilledMidBatchAndRedelivered runs pgsink and chsink in the local
// engine (KafkaSources from triggers/, unordered, many in flight) on a
// broker loaded with n jobs rows and n job_events lines. pgsink is killed
// while its batch's transaction waits inside PostgreSQL, chsink while its
// batches are open; then every record is delivered a second time (a whole
// redelivered batch, with the same CloudEvent ids), and a late "create" of
// every job arrives after its "finish". Afterwards PostgreSQL holds each job
// once, finished, rows untouched by the redelivery, and ClickHouse shows
// each event once. Invalid events mixed into the redelivery are
// dead-lettered one by one out of the batches that carried them.
func TestSinksKilledMidBatchAndRedelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the engine with both sinks")
	}
	const n = 3000
	ctx := context.Background()
	pgURL := testenv.PostgresDB(t)
	chAddr, chDB := testenv.ClickHouseDB(t)
	brokers := testenv.Kafka(t, 4, pgTopic, chTopic, "dead-letter-topic")
	t.Setenv("JOBFLOW_CLICKHOUSE_DB", chDB)
	// Batches stay open a while, so that a kill falls inside one.
	t.Setenv("PGSINK_BATCH_LINGER", "100ms")
	t.Setenv("CHSINK_BATCH_LINGER", "300ms")
	// Several inserts rather than chsink's one large one, so that the kill
	// can fall between them.
	t.Setenv("CHSINK_BATCH_MAX_ITEMS", "500")

	// The jobs table exists before pgsink starts, so the test can lock it.
	store, err := jobstore.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pg, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	ch, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, Auth: clickhouse.Auth{Database: chDB}})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Exec(ctx, eventstore.Schema); err != nil {
		t.Fatal(err)
	}

	cfg := engine.Config{
		Root: testenv.RootDir(t), StateDir: t.TempDir(), Namespace: "jobflow",
		KafkaBrokers: brokers, PostgresURL: pgURL, ClickHouseAddr: chAddr, Adapters: false,
		IngressPort: testenv.FreePort(t), AdminPort: testenv.FreePort(t), CommitInterval: time.Second,
		StartTimeout: 5 * time.Minute, Functions: []string{"pgsink", "chsink"},
	}
	out := &testenv.SyncBuffer{}
	eng := engine.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), out)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("engine: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Errorf("engine did not stop")
		}
		if t.Failed() {
			t.Logf("engine output:\n%s", out.String())
		}
	}()
	select {
	case <-eng.Ready():
	case err := <-done:
		t.Fatalf("engine stopped: %v\n%s", err, out.String())
	case <-time.After(6 * time.Minute):
		t.Fatalf("engine not ready\n%s", out.String())
	}

	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	producer, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()

	// n finished jobs and their two events each (create, finish) for ClickHouse.
	base := time.Now().UTC().Truncate(time.Millisecond)
	rows := make([]job.Row, n)
	var lines []job.EventLine
	for i := range rows {
		id := uuid.New()
		c := base.Add(time.Duration(i) * time.Millisecond)
		f := c.Add(100 * time.Millisecond)
		rows[i] = job.Row{ID: id, Status: job.StatusFinish, CreateDate: c, FinishDate: &f, Sleep: 100, DataSize: int64(i), Checksum: fmt.Sprintf("sum-%d", i)}
		if i < n/2 {
			lines = append(lines,
				job.EventLine{JobID: id, Event: job.StatusCreate, TS: c, Sleep: 100, DataSize: int64(i), EventID: uuid.NewString()},
				job.EventLine{JobID: id, Event: job.StatusFinish, TS: f, Sleep: 100, DataSize: int64(i), EventID: uuid.NewString()})
		}
	}
	pgRecs := records(t, pgTopic, rowEvents(t, rows, "row-"))
	chRecs := records(t, chTopic, lineEvents(t, lines))

	// Hold the jobs table: pgsink's first batch then waits inside its
	// transaction, its deliveries unanswered.
	lockTx, err := pg.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockTx.Exec(ctx, "LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	produce(t, producer, pgRecs)

	waitFor(t, "a pgsink batch waiting inside PostgreSQL", time.Minute, func() bool {
		var waiting int
		_ = pg.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO jobs%'`).Scan(&waiting)
		return waiting > 0
	})
	inFlight := eng.Status().Sources["pgsink-source"].InFlight
	if err := eng.Function("pgsink").Kill(); err != nil {
		t.Fatalf("kill pgsink: %v", err)
	}
	t.Logf("killed pgsink with %d deliveries in flight and its batch waiting on the lock", inFlight)
	time.Sleep(200 * time.Millisecond)
	if err := lockTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// chsink's records only now, so that its kill below finds them on their
	// way (it takes them all in well under a second).
	produce(t, producer, chRecs)

	chCount := func(q string) int {
		var c uint64
		if err := ch.QueryRow(ctx, q).Scan(&c); err != nil {
			return -1
		}
		return int(c)
	}
	waitFor(t, "chsink in the middle of its stream", time.Minute, func() bool {
		st := eng.Status().Sources["chsink-source"]
		return st.InFlight > 0 && chCount("SELECT count() FROM job_events") < len(lines)
	})
	chIn, chRows := eng.Status().Sources["chsink-source"].InFlight, chCount("SELECT count() FROM job_events")
	if err := eng.Function("chsink").Kill(); err != nil {
		t.Fatalf("kill chsink: %v", err)
	}
	t.Logf("killed chsink with %d deliveries in flight, %d of %d rows written", chIn, chRows, len(lines))

	pgDone := func(want int) func() bool {
		return func() bool {
			var finished int
			_ = pg.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'finish') FROM jobs`).Scan(&finished)
			return finished == want
		}
	}
	waitFor(t, "every job finished in PostgreSQL", 3*time.Minute, pgDone(n))
	waitFor(t, "every event in ClickHouse", 3*time.Minute, func() bool {
		return chCount("SELECT count() FROM job_events FINAL") == len(lines)
	})
	checkPostgres(t, pg, rows)
	checkClickHouse(t, ch, lines)
	var lastWrite time.Time
	if err := pg.QueryRow(ctx, `SELECT max(updated_at) FROM jobs`).Scan(&lastWrite); err != nil {
		t.Fatal(err)
	}

	// Redelivery of everything: the same records again (same CloudEvent
	// ids: what a source replays after a lost commit), then a late
	// "create" of every job, after its "finish".
	creates := make([]job.Row, n)
	for i, r := range rows {
		creates[i] = job.Row{ID: r.ID, Status: job.StatusCreate, CreateDate: r.CreateDate, Sleep: r.Sleep, DataSize: r.DataSize}
	}
	pgBefore := eng.Status().Sources["pgsink-source"].Delivered
	chBefore := eng.Status().Sources["chsink-source"].Delivered
	// Invalid events among them, inside the batches the sources send: each
	// must be dead-lettered alone while the rest of its batch is written.
	// Broken JSON declared as JSON even breaks the batch's own JSON.
	badPG := records(t, pgTopic, []event.Event{
		newEvent(t, "bad-row-1", job.TypeRow, "k1", event.ApplicationJSON, []byte(`{"payload":{"id":"not-a-uuid","status":"finish"}}`)),
		newEvent(t, "bad-row-2", job.TypeRow, "k2", event.ApplicationJSON, []byte(`{"payload":{"id":"`+uuid.NewString()+`","status":"started"}}`)),
		newEvent(t, "bad-row-3", job.TypeRow, "k3", event.ApplicationJSON, []byte(`{"payload":`)),
		newEvent(t, "bad-row-4", "dev.jobflow.unknown", "k4", event.ApplicationJSON, []byte(`{}`)),
	})
	// Spread over the stream and the partitions (random keys): a fast
	// sink drains its queues as records come, and an invalid event that
	// happens to be alone in the queue goes alone, not in a batch.
	var badCHEvents []event.Event
	for i := range 4 {
		badCHEvents = append(badCHEvents,
			newEvent(t, fmt.Sprintf("bad-csv-%d", 2*i), job.TypeCSV, uuid.NewString(), "text/csv", []byte("not,a,line\n")),
			newEvent(t, fmt.Sprintf("bad-csv-%d", 2*i+1), job.TypeCSV, uuid.NewString(), "text/csv", []byte(uuid.NewString()+",started,2026-11-23 17:32:58,1,1,1,e\n")))
	}
	badCH := records(t, chTopic, badCHEvents)
	// mix puts the invalid records among recs, in groups at even spacing.
	mix := func(recs, bad []*sarama.ProducerMessage, groups int) []*sarama.ProducerMessage {
		var out []*sarama.ProducerMessage
		per, step := len(bad)/groups, len(recs)/(groups+1)
		for g := range groups {
			out = append(out, recs[g*step:(g+1)*step]...)
			out = append(out, bad[g*per:(g+1)*per]...)
		}
		return append(out, recs[groups*step:]...)
	}
	produce(t, producer, mix(pgRecs, badPG, 1))
	produce(t, producer, mix(chRecs, badCH, 4))
	produce(t, producer, records(t, pgTopic, rowEvents(t, creates, "late-create-")))
	waitFor(t, "the redelivered records delivered, the invalid ones dead-lettered", 3*time.Minute, func() bool {
		st := eng.Status().Sources
		return st["pgsink-source"].Delivered-pgBefore >= int64(2*n) && st["chsink-source"].Delivered-chBefore >= int64(len(lines)) &&
			st["pgsink-source"].DeadLettered >= int64(len(badPG)) && st["chsink-source"].DeadLettered >= int64(len(badCH))
	})
	checkPostgres(t, pg, rows)
	checkClickHouse(t, ch, lines)
	var lastWrite2 time.Time
	if err := pg.QueryRow(ctx, `SELECT max(updated_at) FROM jobs`).Scan(&lastWrite2); err != nil {
		t.Fatal(err)
	}
	if !lastWrite2.Equal(lastWrite) {
		t.Errorf("the redelivery rewrote rows: last update %s, before it %s", lastWrite2, lastWrite)
	}
	raw := chCount("SELECT count() FROM job_events")
	st := eng.Status()
	for name, bad := range map[string]int{"pgsink-source": len(badPG), "chsink-source": len(badCH)} {
		s := st.Sources[name]
		if s.DeadLettered != int64(bad) || s.Dropped != 0 {
			t.Errorf("source %s: %d dead-lettered (want the %d invalid events), %d dropped", name, s.DeadLettered, bad, s.Dropped)
		}
		// The sources sent batches (triggers/: jobflow.dev/delivery.batch-size),
		// and those holding an invalid event were delivered one by one.
		if s.Batches == 0 || s.BatchFallbacks == 0 {
			t.Errorf("source %s: %d batches, %d delivered one by one: the test did not exercise batched delivery", name, s.Batches, s.BatchFallbacks)
		}
	}
	t.Logf("postgres: %d jobs, all finished, untouched by the redelivery; clickhouse: %d events once each (%d stored rows before dedupe); batches pgsink %d (%d one by one), chsink %d (%d one by one); retries pgsink %d, chsink %d; restarts pgsink %d, chsink %d",
		n, len(lines), raw, st.Sources["pgsink-source"].Batches, st.Sources["pgsink-source"].BatchFallbacks,
		st.Sources["chsink-source"].Batches, st.Sources["chsink-source"].BatchFallbacks,
		st.Sources["pgsink-source"].Failures, st.Sources["chsink-source"].Failures,
		st.Functions["pgsink"].Restarts, st.Functions["chsink"].Restarts)
}

// checkPostgres: each job exactly once, with the state it was sent with.
func checkPostgres(t *testing.T, pg *pgxpool.Pool, rows []job.Row) {
	t.Helper()
	ctx := context.Background()
	ids := make([]uuid.UUID, len(rows))
	sums := make([]string, len(rows))
	for i, r := range rows {
		ids[i], sums[i] = r.ID, r.Checksum
	}
	var total, bad int
	if err := pg.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if err := pg.QueryRow(ctx, `SELECT count(*) FROM unnest($1::uuid[], $2::text[]) AS want(id, sum) LEFT JOIN jobs USING (id)
		WHERE jobs.status IS DISTINCT FROM 'finish' OR jobs.checksum IS DISTINCT FROM want.sum OR jobs.finish_date IS NULL`, ids, sums).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if total != len(rows) || bad != 0 {
		t.Fatalf("postgres: %d rows (want %d), %d not finished with their checksum", total, len(rows), bad)
	}
}

// checkClickHouse: each event exactly once in what queries see (FINAL).
func checkClickHouse(t *testing.T, ch clickhouse.Conn, lines []job.EventLine) {
	t.Helper()
	var final, distinctIDs, jobs, bad uint64
	ctx := context.Background()
	if err := ch.QueryRow(ctx, `SELECT count(), uniqExact(event_id) FROM job_events FINAL`).Scan(&final, &distinctIDs); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueryRow(ctx, `SELECT count(), countIf(n != 2 OR evs != 'create,finish') FROM (
		SELECT job_id, count() AS n, arrayStringConcat(arraySort(groupArray(event)), ',') AS evs FROM job_events FINAL GROUP BY job_id)`).Scan(&jobs, &bad); err != nil {
		t.Fatal(err)
	}
	if int(final) != len(lines) || int(distinctIDs) != len(lines) || int(jobs) != len(lines)/2 || bad != 0 {
		t.Fatalf("clickhouse: %d rows with %d event ids for %d jobs (%d wrong) after FINAL; want %d, %d, %d, 0",
			final, distinctIDs, jobs, bad, len(lines), len(lines), len(lines)/2)
	}
}
