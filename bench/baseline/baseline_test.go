package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/processor"
)

// TestPipeline runs the five roles against a broker and the test
// databases: good jobs end finish in PostgreSQL with their checksum and
// with both rows in ClickHouse; bad requests get a 400; a bad event among
// good ones is dead-lettered alone.
func TestPipeline(t *testing.T) {
	brokers := testenv.Kafka(t, 4, receiverTopic, processorTopic, postgresTopic, clickhouseTopic, deadLetterTopic)
	pgURL := testenv.PostgresDB(t)
	chAddr, chDB := testenv.ClickHouseDB(t)
	o := options{Brokers: brokers, Listen: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), PostgresURL: pgURL,
		ClickHouseAddr: chAddr, ClickHouseDB: chDB, MaxBatch: 100, InFlight: 4, FetchWait: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, len(roles))
	for name, run := range roles {
		go func() {
			err := run(ctx, o)
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("%s: %w", name, err)
			} else {
				err = nil
			}
			errs <- err
		}()
	}
	defer func() {
		cancel()
		for range roles {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}()
	base := "http://" + o.Listen
	waitFor(t, 30*time.Second, "the receiver", func() bool {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	for _, bad := range []string{`{"sleep":-1}`, `{"sleep":"x"}`, `{"data_size":1,"extra":1}`} {
		resp, err := http.Post(base+"/create/job", "application/json", bytes.NewBufferString(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %s, want 400", bad, resp.Status)
		}
	}

	// A job.created whose data is not a job, among the good ones.
	p := testenv.Producer(t, brokers)
	badEvent := event.New()
	badEvent.SetID(uuid.NewString())
	badEvent.SetType(job.TypeCreated)
	badEvent.SetSource("/test")
	_ = badEvent.SetData(event.ApplicationJSON, []byte(`{"id":"not a uuid"}`))
	rec, err := record(receiverTopic, badEvent)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(rec); err != nil {
		t.Fatal(err)
	}

	const n = 40
	ids := map[uuid.UUID]bool{}
	for i := range n {
		body := fmt.Sprintf(`{"sleep":%d,"data_size":%d}`, i%3*10, 64+i)
		resp, err := http.Post(base+"/create/job", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		var ans answer
		err = json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || ans.DataSize != int64(64+i) {
			t.Fatalf("POST %s: %s %+v %v", body, resp.Status, ans, err)
		}
		ids[ans.ID] = true
	}

	pg, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	waitFor(t, 90*time.Second, "every job finish in PostgreSQL", func() bool {
		var c int
		return pg.QueryRow(ctx, "SELECT count(*) FROM jobs WHERE status = 'finish'").Scan(&c) == nil && c == n
	})
	rows, err := pg.Query(ctx, "SELECT id, data_size, checksum FROM jobs")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var j job.Job
		if err := rows.Scan(&j.ID, &j.DataSize, &j.Checksum); err != nil {
			t.Fatal(err)
		}
		if !ids[j.ID] || j.Checksum != processor.Checksum(j) {
			t.Errorf("job %s in PostgreSQL: ours %v, checksum %q", j.ID, ids[j.ID], j.Checksum)
		}
	}
	rows.Close()

	es, err := eventstore.Open(ctx, chAddr, chDB)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	waitFor(t, 90*time.Second, "both rows of every job in ClickHouse", func() bool {
		var c uint64
		return es.Conn.QueryRow(ctx, "SELECT uniqExact(job_id, event) FROM job_events").Scan(&c) == nil && c == 2*n
	})

	// The bad event is dead-lettered by the processor and by the
	// converter (both read receiver-topic), and nothing else is.
	client, err := sarama.NewClient(brokers, saramaConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(deadLetterTopic)
	if err != nil {
		t.Fatal(err)
	}
	var dead int64
	for _, part := range parts {
		n, err := client.GetOffset(deadLetterTopic, part, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		dead += n
	}
	if dead != 2 {
		t.Errorf("dead-letter-topic holds %d records, want 2", dead)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
