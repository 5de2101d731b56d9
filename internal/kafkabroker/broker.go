// Package kafkabroker is the local engine's embedded Kafka-protocol broker
// (franz-go's kfake), and topic creation from KafkaTopic manifests on any
// broker.
package kafkabroker

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is an embedded broker.
type Broker struct{ cluster *kfake.Cluster }

// Start listens on 127.0.0.1:port and keeps data and offsets under dataDir
// (empty: in memory only).
func Start(port int, dataDir string) (*Broker, error) {
	opts := []kfake.Opt{kfake.Ports(port), kfake.DefaultNumPartitions(1)}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	} else {
		opts = append(opts, InMemory())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on port %d: %w", port, err)
	}
	return &Broker{cluster: c}, nil
}

// InMemorySegmentBytes is the segment size of a broker that keeps its data
// in memory.
//
// kfake keeps an in-memory segment in one byte slice that grows by doubling
// up to segment.bytes (100 MiB by default), so growing a large one copies
// tens of megabytes into a fresh slice at once. Measured in the bench
// (bench/jobflow-bench, 33k records/s): each such growth stalled the whole
// broker for 150-250 ms, with every record produced meanwhile waiting,
// several times a minute. 8 MiB segments keep each growth small; the
// stalls went away.
const InMemorySegmentBytes = 8 << 20

// InMemory is the option for a broker without a data dir (see
// InMemorySegmentBytes).
func InMemory() kfake.Opt {
	return kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(InMemorySegmentBytes)})
}

// Addrs are the bootstrap addresses.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Close stops the broker (and persists its data when it has a data dir).
func (b *Broker) Close() { b.cluster.Close() }

// TopicSpec is a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int32
	Config     map[string]string
}

// EnsureTopics creates the topics that do not exist and grows the ones
// with fewer partitions; it never deletes or shrinks.
func EnsureTopics(brokers []string, topics []TopicSpec) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	admin, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var errs []error
	for _, t := range topics {
		if t.Partitions < 1 {
			t.Partitions = 1
		}
		if d, ok := existing[t.Name]; ok {
			if d.NumPartitions < t.Partitions {
				if err := admin.CreatePartitions(t.Name, t.Partitions, nil, false); err != nil {
					errs = append(errs, fmt.Errorf("grow %s to %d partitions: %w", t.Name, t.Partitions, err))
				}
			}
			continue
		}
		cfg := map[string]*string{}
		for k, v := range t.Config {
			cfg[k] = &v
		}
		err := admin.CreateTopic(t.Name, &sarama.TopicDetail{NumPartitions: t.Partitions, ReplicationFactor: 1, ConfigEntries: cfg}, false)
		var te *sarama.TopicError
		if err != nil && !(errors.As(err, &te) && te.Err == sarama.ErrTopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create %s (%s partitions): %w", t.Name, strconv.Itoa(int(t.Partitions)), err))
		}
	}
	return errors.Join(errs...)
}
