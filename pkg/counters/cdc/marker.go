package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Marker is the value of a slot's record in the offsets topic (key: the
// slot name), as Kafka Connect keeps a source's offsets in its offsets
// topic. The snapshot writes "started" in a transaction of its own before
// it creates the slot, and "completed" in the transaction of the snapshot's
// records.
type Marker struct {
	Slot              string `json:"slot"`
	LSN               string `json:"lsn,omitempty"` // the slot's consistent point, 0/16B3748
	SnapshotCompleted bool   `json:"snapshot_completed"`
	Rows              int64  `json:"snapshot_rows"`
	TsMs              int64  `json:"ts_ms"`
}

// markerMessage is the record of m in the offsets topic.
func (a *Adapter) markerMessage(m Marker) (*sarama.ProducerMessage, error) {
	m.Slot, m.TsMs = a.cfg.Slot, time.Now().UnixMilli()
	v, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot marker: %w", err)
	}
	return &sarama.ProducerMessage{Topic: a.cfg.offsetsTopic(), Key: sarama.StringEncoder(a.cfg.Slot), Value: sarama.ByteEncoder(v),
		Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}}}, nil
}

// TransactionalProducerConfig is the snapshot's producer: idempotent and
// transactional with the id jobflow-cdc-<slot>, so that a new adapter on
// the same slot fences an old one and aborts its open transaction.
func TransactionalProducerConfig(slot string, timeout time.Duration) *sarama.Config {
	sc := ProducerConfig()
	sc.ClientID = "jobflow-cdc-snapshot"
	sc.Producer.Transaction.ID = "jobflow-cdc-" + slot
	if timeout > 0 {
		sc.Producer.Transaction.Timeout = timeout
	}
	sc.Producer.Flush.Messages = 0
	sc.Producer.Flush.Frequency = 0
	return sc
}

// ensureOffsetsTopic creates the offsets topic (compacted, one partition)
// if it is missing, as Kafka Connect creates its offsets topic; where
// topics are declared (brokers/topics.yaml) it already exists.
func (a *Adapter) ensureOffsetsTopic() error {
	sc := ProducerConfig()
	sc.ClientID = "jobflow-cdc-admin"
	admin, err := sarama.NewClusterAdmin(a.cfg.Brokers, sc)
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer func() { _ = admin.Close() }()
	compact := "compact"
	err = admin.CreateTopic(a.cfg.offsetsTopic(), &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1,
		ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("create offsets topic %s: %w", a.cfg.offsetsTopic(), err)
	}
	return nil
}

// readMarker returns the slot's newest marker in the offsets topic (nil:
// none), reading it read_committed to its last stable offset. It keeps
// the control records (the commit and abort markers of transactions) to
// know when it is there: the log ends with one after every transaction,
// and a consumer never receives one, so waiting for the last offset would
// never end. Call it after the transactional producer is initialised,
// which ends any transaction an earlier adapter left open.
func (a *Adapter) readMarker(ctx context.Context) (*Marker, error) {
	topic := a.cfg.offsetsTopic()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.cfg.Brokers...), kgo.ClientID("jobflow-cdc-offsets"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return nil, fmt.Errorf("offsets topic client: %w", err)
	}
	defer cl.Close()
	end, err := lastStableOffset(ctx, cl, topic)
	if err != nil {
		return nil, err
	}
	var found *Marker
	for next := int64(0); next < end; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("read offsets topic %s: %w", topic, ferr)
		}
		for _, r := range fs.Records() {
			next = r.Offset + 1
			if r.Attrs.IsControl() || string(r.Key) != a.cfg.Slot {
				continue
			}
			if len(r.Value) == 0 { // a tombstone: the slot's marker was deleted
				found = nil
				continue
			}
			var m Marker
			if err := json.Unmarshal(r.Value, &m); err != nil {
				return nil, fmt.Errorf("offsets topic %s at %d: %w", topic, r.Offset, err)
			}
			found = &m
		}
	}
	return found, nil
}

// lastStableOffset is the offset read_committed consumers read up to in
// the topic's partition 0.
func lastStableOffset(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("offsets topic %s: list offsets: %w", topic, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("offsets topic %s: list offsets: no answer for partition 0", topic)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return 0, fmt.Errorf("offsets topic %s: list offsets: %w", topic, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset, nil
}
