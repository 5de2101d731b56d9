package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
)

// kafkaEngine is ClickHouse's own Kafka table engine reading the CSV topic
// into a table like job_events: a Kafka table (the consumer), a target
// ReplacingMergeTree with an extra `ingested` column (when the row was
// written, second precision: 18.16 has no DateTime64) and a materialized
// view moving rows from one to the other.
type kafkaEngine struct {
	addr, db string
}

func startKafkaEngine(ctx context.Context, addr, db string, brokers []string, group string) (*kafkaEngine, error) {
	// librdkafka's default auto.offset.reset is latest and 18.16 takes no
	// per-table override: commit offset 0 for the group so it reads the
	// topic from its beginning, like the sinks' KafkaSources (earliest).
	if err := commitStart(brokers, chTopic, group); err != nil {
		return nil, err
	}
	if err := freshClickHouse(ctx, addr, db); err != nil {
		return nil, err
	}
	c, err := clickhouseConn(addr, db)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	target := strings.Replace(eventstore.Schema, "event_id  String\n", "event_id  String,\n\tingested  DateTime\n", 1)
	if target == eventstore.Schema {
		return nil, fmt.Errorf("kafka engine: unexpected job_events schema")
	}
	stmts := []string{
		target,
		fmt.Sprintf(`CREATE TABLE job_events_queue (
			job_id UUID, event String, ts DateTime, ts_ms UInt64, sleep UInt64, data_size UInt64, event_id String
		) ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s', kafka_group_name = '%s',
		  kafka_format = 'CSV', kafka_num_consumers = 1`, strings.Join(brokers, ","), chTopic, group),
		`CREATE MATERIALIZED VIEW job_events_consumer TO job_events AS
			SELECT job_id, event, ts, ts_ms, sleep, data_size, event_id, now() AS ingested FROM job_events_queue`,
	}
	for _, s := range stmts {
		if err := c.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("kafka engine: %w\n%s", err, s)
		}
	}
	return &kafkaEngine{addr: addr, db: db}, nil
}

// stop detaches the consumer (drops the view and the Kafka table).
func (k *kafkaEngine) stop(ctx context.Context) error {
	c, err := clickhouseConn(k.addr, k.db)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, s := range []string{"DROP TABLE IF EXISTS job_events_consumer", "DROP TABLE IF EXISTS job_events_queue"} {
		if err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("kafka engine: %w", err)
		}
	}
	return nil
}

// latencies are ingested - ts of the rows written since minTSms, in seconds.
func (k *kafkaEngine) latencies(ctx context.Context, minTSms uint64) (p50, p99, max float64, n uint64, err error) {
	c, err := clickhouseConn(k.addr, k.db)
	if err != nil {
		return
	}
	defer c.Close()
	err = c.QueryRow(ctx, `SELECT quantileExact(0.5)(d), quantileExact(0.99)(d), max(d), count() FROM (
		SELECT toFloat64(toUInt64(ingested)) - ts_ms / 1000 AS d FROM job_events WHERE ts_ms >= ?)`, minTSms).
		Scan(&p50, &p99, &max, &n)
	return
}

// commitStart commits offset 0 of every partition of topic for group.
func commitStart(brokers []string, topic, group string) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer client.Close()
	coord, err := client.Coordinator(group)
	if err != nil {
		return fmt.Errorf("coordinator of %s: %w", group, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", topic, err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1,
		RetentionTime: -1}
	for _, p := range parts {
		req.AddBlock(topic, p, 0, 0, "")
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		return fmt.Errorf("commit start offsets of %s: %w", group, err)
	}
	for _, ps := range resp.Errors {
		for p, kerr := range ps {
			if kerr != sarama.ErrNoError {
				return fmt.Errorf("commit start offset of %s/%d: %w", topic, p, kerr)
			}
		}
	}
	return nil
}
