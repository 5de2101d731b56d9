package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
)

// TestBatchesKeepPerEventOutcomes: job.created events, three of them
// invalid, land in receiver-topic at once; the processor and the converter
// take them in batches (jobflow.dev/delivery.batch-size) and emit their
// outputs in batches, the sinks take theirs in batches. A batch holding an
// invalid event is refused whole and its events delivered one by one: each
// invalid event is dead-lettered alone (once by each source that reads
// it), every valid job is stored once, finished, with its two events in
// ClickHouse. With JOBFLOW_ONE_EVENT_PER_REQUEST the outcome is the same
// and no request carries more than one event, as on Knative.
func TestBatchesKeepPerEventOutcomes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the engine")
	}
	for _, one := range []bool{false, true} {
		t.Run(fmt.Sprintf("one-event-per-request=%v", one), func(t *testing.T) { batchOutcomes(t, one) })
	}
}

func batchOutcomes(t *testing.T, oneEventPerRequest bool) {
	cfg := testConfig(t)
	cfg.Functions = []string{"processor", "converter", "pgsink", "chsink"}
	cfg.Adapters = false
	cfg.OneEventPerRequest = oneEventPerRequest
	c := runCluster(t, cfg)

	const n = 400
	bad := map[int]bool{60: true, 200: true, 333: true}
	var body bytes.Buffer
	body.WriteByte('[')
	var badIDs []string
	for i := range n {
		j := job.Job{ID: uuid.New(), Status: job.StatusCreate, CreateDate: time.Now().UTC().Truncate(time.Millisecond), DataSize: 16}
		e, err := job.NewEvent(job.TypeCreated, "/test", j.ID.String(), j)
		if err != nil {
			t.Fatal(err)
		}
		if bad[i] {
			_ = e.SetData("application/json", []byte(`{"id":"not-a-uuid"}`))
			badIDs = append(badIDs, e.ID())
		}
		if i > 0 {
			body.WriteByte(',')
		}
		js, _ := e.MarshalJSON()
		body.Write(js)
	}
	body.WriteByte(']')
	// Straight into receiver-topic with one produce, through the KafkaSink
	// ingress that the functions emit to.
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/jobflow/receiver-sink", cfg.IngressPort), event.ApplicationCloudEventsBatchJSON, &body)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ingress: %d %s", resp.StatusCode, answer)
	}

	good := n - len(bad)
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	var finished, rows int
	for time.Now().Before(deadline) {
		_ = c.pg.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'finish'), count(*) FROM jobs`).Scan(&finished, &rows)
		st := c.eng.Status().Sources
		if finished == good && st["processor-source"].DeadLettered == 3 && st["converter-source"].DeadLettered == 3 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if finished != good || rows != good {
		t.Fatalf("postgres: %d finished of %d rows, want %d of %d", finished, rows, good, good)
	}
	var chJobs, chBad uint64
	for time.Now().Before(deadline) {
		_ = c.ch.QueryRow(ctx, `SELECT count(), countIf(n != 2) FROM (SELECT job_id, count() AS n FROM job_events FINAL GROUP BY job_id)`).Scan(&chJobs, &chBad)
		if chJobs == uint64(good) && chBad == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if chJobs != uint64(good) || chBad != 0 {
		t.Fatalf("clickhouse: %d jobs, %d without exactly 2 events; want %d and 0", chJobs, chBad, good)
	}

	st := c.eng.Status().Sources
	for _, name := range []string{"processor-source", "converter-source"} {
		s := st[name]
		if s.DeadLettered != 3 || s.Dropped != 0 {
			t.Errorf("%s: %d dead-lettered, %d dropped; want the 3 invalid events and none", name, s.DeadLettered, s.Dropped)
		}
		t.Logf("%s: %d delivered in %d attempts, %d batches, %d refused and delivered one by one", name, s.Delivered, s.Attempts, s.Batches, s.BatchFallbacks)
		if oneEventPerRequest && s.Batches != 0 {
			t.Errorf("%s: %d batches with one event per request", name, s.Batches)
		}
		if !oneEventPerRequest && (s.Batches == 0 || s.BatchFallbacks == 0) {
			t.Errorf("%s: %d batches, %d refused: the batched path was not exercised", name, s.Batches, s.BatchFallbacks)
		}
	}
	for _, name := range []string{"pgsink-source", "chsink-source"} {
		if s := st[name]; s.DeadLettered != 0 || s.Dropped != 0 {
			t.Errorf("%s: %d dead-lettered, %d dropped", name, s.DeadLettered, s.Dropped)
		}
	}
	dead := deadLettered(t, fmt.Sprintf("127.0.0.1:%d", cfg.KafkaPort), 6)
	want := append(append([]string{}, badIDs...), badIDs...)
	sort.Strings(want)
	if fmt.Sprint(dead) != fmt.Sprint(want) {
		t.Fatalf("dead-letter-topic holds %v, want each invalid event once per source: %v", dead, want)
	}
	emits := emitBatches(t, c.eng.Status().Functions["processor"].URL)
	t.Logf("processor emitted %s", emits)
	if oneEventPerRequest && emits.batches > 0 || !oneEventPerRequest && emits.sum <= emits.batches {
		t.Errorf("processor's emits: %s with one event per request %v", emits, oneEventPerRequest)
	}
}

// deadLettered reads n records of dead-letter-topic: their event ids.
func deadLettered(t *testing.T, broker string, n int) []string {
	t.Helper()
	cons, err := sarama.NewConsumer([]string{broker}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition("dead-letter-topic", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var ids []string
	for len(ids) < n {
		select {
		case m := <-pc.Messages():
			for _, h := range m.Headers {
				if string(h.Key) == "ce_id" {
					ids = append(ids, string(h.Value))
				}
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("dead-letter-topic: %d records of %d: %v", len(ids), n, ids)
		}
	}
	select {
	case m := <-pc.Messages():
		t.Fatalf("dead-letter-topic: more than %d records (%v)", n, m.Headers)
	case <-time.After(2 * time.Second):
	}
	sort.Strings(ids)
	return ids
}

type emitStats struct{ batches, sum float64 }

func (e emitStats) String() string {
	return fmt.Sprintf("%.0f events in %.0f group commits", e.sum, e.batches)
}

var emitBatchLine = regexp.MustCompile(`(?m)^jobflow_function_emit_batch_events_(sum|count)\{[^}]*\} (\S+)$`)

// emitBatches reads the emitter's group commits from a function's metrics
// (one instance's, through its activator).
func emitBatches(t *testing.T, url string) emitStats {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var s emitStats
	for _, m := range emitBatchLine.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "sum" {
			s.sum += v
		} else {
			s.batches += v
		}
	}
	return s
}
