// Package replay moves a consumer group's committed offsets back (or
// forward): to the beginning of its topics, to an offset, or to the first
// record at or after a time, so that a KafkaSource or Trigger delivers those
// records again through its normal delivery rules.
//
// Kafka takes such a commit only from outside the group, so the group must
// have no member: a stopped engine, or a source the running engine paused
// (internal/engine's POST /replay). Reset refuses a group with members.
package replay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// Position is where a group is moved: exactly one of the three.
type Position struct {
	Beginning bool      `json:"beginning,omitempty"`
	Offset    *int64    `json:"offset,omitempty"`
	Time      time.Time `json:"time,omitempty"`
}

// Validate checks that exactly one position is set.
func (p Position) Validate() error {
	n := 0
	if p.Beginning {
		n++
	}
	if p.Offset != nil {
		n++
		if *p.Offset < 0 {
			return fmt.Errorf("offset %d: want 0 or more", *p.Offset)
		}
	}
	if !p.Time.IsZero() {
		n++
	}
	if n != 1 {
		return errors.New("want exactly one of: the beginning, an offset, a time")
	}
	return nil
}

func (p Position) String() string {
	switch {
	case p.Beginning:
		return "beginning"
	case p.Offset != nil:
		return "offset " + strconv.FormatInt(*p.Offset, 10)
	default:
		return "time " + p.Time.UTC().Format(time.RFC3339Nano)
	}
}

// Move is what Reset did to one partition: From is the offset the group
// had committed (-1: none), To the one it has now.
type Move struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
}

// ErrGroupActive: the group has members; stop or pause them first.
var ErrGroupActive = errors.New("consumer group has active members")

// Group names a consumer group and the topics it reads.
type Group struct {
	ID     string   `json:"group"`
	Topics []string `json:"topics"`
}

// Config is the client configuration Reset uses.
func Config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "jobflow-replay"
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Return.Errors = true
	c.Consumer.IsolationLevel = sarama.ReadCommitted // as the sources it resets read
	return c
}

// Reset commits pos for every partition of g's topics. An offset is
// clamped into what the partition holds; a time past the last record is
// the partition's end. It reads the commits back and fails unless each is
// what it wrote.
func Reset(ctx context.Context, brokers []string, g Group, pos Position) ([]Move, error) {
	if err := pos.Validate(); err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(brokers, Config())
	if err != nil {
		return nil, fmt.Errorf("replay: connect to %v: %w", brokers, err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if err := checkEmpty(admin, g.ID); err != nil {
		return nil, err
	}
	before, err := admin.ListConsumerGroupOffsets(g.ID, nil)
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		before, err = &sarama.OffsetFetchResponse{}, nil // a group that never committed
	}
	if err != nil {
		return nil, fmt.Errorf("replay: offsets of %s: %w", g.ID, err)
	}
	var moves []Move
	for _, topic := range g.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return nil, fmt.Errorf("replay: topic %s: %w", topic, err)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, p := range parts {
			to, err := target(client, topic, p, pos)
			if err != nil {
				return nil, err
			}
			from := int64(-1)
			if b := before.GetBlock(topic, p); b != nil {
				from = b.Offset
			}
			moves = append(moves, Move{Topic: topic, Partition: p, From: from, To: to})
		}
	}
	if err := commit(client, g.ID, moves); err != nil {
		return nil, err
	}
	after, err := admin.ListConsumerGroupOffsets(g.ID, nil)
	if err != nil {
		return nil, fmt.Errorf("replay: read back offsets of %s: %w", g.ID, err)
	}
	for _, m := range moves {
		if b := after.GetBlock(m.Topic, m.Partition); b == nil || b.Offset != m.To {
			return nil, fmt.Errorf("replay: %s %s/%d: committed %v, want %d", g.ID, m.Topic, m.Partition, b, m.To)
		}
	}
	return moves, ctx.Err()
}

// checkEmpty fails with ErrGroupActive when the group has members.
func checkEmpty(admin sarama.ClusterAdmin, group string) error {
	ds, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return fmt.Errorf("replay: describe %s: %w", group, err)
	}
	for _, d := range ds {
		if len(d.Members) > 0 {
			return fmt.Errorf("replay: %s (%s, %d members): %w", group, d.State, len(d.Members), ErrGroupActive)
		}
	}
	return nil
}

// target is the offset pos means on one partition.
func target(client sarama.Client, topic string, p int32, pos Position) (int64, error) {
	oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		return 0, fmt.Errorf("replay: %s/%d: %w", topic, p, err)
	}
	newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return 0, fmt.Errorf("replay: %s/%d: %w", topic, p, err)
	}
	switch {
	case pos.Beginning:
		return oldest, nil
	case pos.Offset != nil:
		return min(max(*pos.Offset, oldest), newest), nil
	}
	at, err := client.GetOffset(topic, p, pos.Time.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("replay: %s/%d: offset at %s: %w", topic, p, pos.Time, err)
	}
	if at < 0 {
		return newest, nil // no record at or after the time
	}
	return at, nil
}

// commit writes the moves as the group's offsets: one OffsetCommit to the
// group's coordinator from outside the group (generation -1, no member),
// which Kafka takes for a group without members.
func commit(client sarama.Client, group string, moves []Move) error {
	if err := client.RefreshCoordinator(group); err != nil {
		return fmt.Errorf("replay: coordinator of %s: %w", group, err)
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return fmt.Errorf("replay: coordinator of %s: %w", group, err)
	}
	req := sarama.NewOffsetCommitRequest(client.Config(), group)
	for _, m := range moves {
		req.AddBlockWithLeaderEpoch(m.Topic, m.Partition, m.To, -1, 0, "jobflow replay")
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		return fmt.Errorf("replay: commit %s: %w", group, err)
	}
	var errs []error
	for topic, parts := range resp.Errors {
		for p, kerr := range parts {
			if kerr != sarama.ErrNoError {
				errs = append(errs, fmt.Errorf("replay: commit %s %s/%d: %w", group, topic, p, kerr))
			}
		}
	}
	return errors.Join(errs...)
}
