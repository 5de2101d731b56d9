package kafkabroker

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// CommitLatest gives group, on each partition of topic where it has no
// committed offset, the partition's end as its committed offset, and
// leaves the others alone. A Broker Trigger starts at "latest" (Knative);
// resolving latest when the group is set up, before the broker's ingress
// accepts anything, rather than when its consumer first claims the
// partition, means no event accepted from then on is skipped: neither one
// accepted while the consumer was starting nor one accepted before a crash
// that came before the group's first commit.
func CommitLatest(brokers []string, group, topic string) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("group %s: partitions of %s: %w", group, topic, err)
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return fmt.Errorf("group %s: coordinator: %w", group, err)
	}
	fetch := &sarama.OffsetFetchRequest{Version: 5, ConsumerGroup: group}
	for _, p := range parts {
		fetch.AddPartition(topic, p)
	}
	committed, err := coord.FetchOffset(fetch)
	if err != nil {
		return fmt.Errorf("group %s: fetch offsets: %w", group, err)
	}
	commit := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1, RetentionTime: -1}
	n := 0
	for _, p := range parts {
		if b := committed.GetBlock(topic, p); b != nil && !errors.Is(b.Err, sarama.ErrNoError) {
			return fmt.Errorf("group %s: offset of %s/%d: %w", group, topic, p, b.Err)
		} else if b != nil && b.Offset >= 0 {
			continue
		}
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("group %s: end of %s/%d: %w", group, topic, p, err)
		}
		commit.AddBlock(topic, p, end, 0, "")
		n++
	}
	if n == 0 {
		return nil
	}
	resp, err := coord.CommitOffset(commit)
	if err != nil {
		return fmt.Errorf("group %s: commit: %w", group, err)
	}
	for _, ps := range resp.Errors {
		for p, kerr := range ps {
			if !errors.Is(kerr, sarama.ErrNoError) {
				return fmt.Errorf("group %s: commit %s/%d: %w", group, topic, p, kerr)
			}
		}
	}
	return nil
}
