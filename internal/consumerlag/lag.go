// Package consumerlag measures what KEDA's Kafka scaler scales on: for each
// consumer group of a KafkaSource or a Trigger, the records of its topics
// not yet committed (the newest offset of each partition less the group's
// committed offset), exported as the gauge jobflow_consumer_lag.
package consumerlag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

// lagGauge is the lag of a source or trigger, summed over its partitions
// (KEDA's lagThreshold compares this total, or the lag per partition).
var lagGauge = metrics.NewGauge("consumer_lag",
	"Records of a source's or trigger's topics not yet committed by its consumer group (newest offset less committed offset, summed over partitions), what KEDA scales on.",
	"source", "kind")

// Group is one consumer group to measure.
type Group struct {
	Name   string // the source's or trigger's name (the metric's source label)
	Kind   string // source | trigger
	Group  string
	Topics []string
	// Earliest: a partition the group never committed counts from its
	// oldest offset (KEDA's offsetResetPolicy earliest); else it counts 0.
	Earliest bool
}

// Poller measures groups every interval.
type Poller struct {
	brokers  []string
	groups   []Group
	interval time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	last map[string]int64 // by Group.Name
}

// New returns a poller of groups on brokers.
func New(brokers []string, groups []Group, interval time.Duration, log *slog.Logger) *Poller {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &Poller{brokers: brokers, groups: groups, interval: interval, log: log, last: map[string]int64{}}
}

// Lag returns the last measured lag of a source or trigger (false before
// the first measure).
func (p *Poller) Lag(name string) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.last[name]
	return v, ok
}

// Run measures until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	if len(p.groups) == 0 {
		return
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "jobflow-consumer-lag"
	var client sarama.Client
	defer func() {
		if client != nil {
			_ = client.Close()
		}
	}()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		if client == nil {
			c, err := sarama.NewClient(p.brokers, cfg)
			if err != nil {
				p.log.Warn("consumer lag: connect", "err", err)
			}
			client = c
		}
		if client != nil {
			p.measureAll(client)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Poller) measureAll(client sarama.Client) {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		p.log.Warn("consumer lag: admin", "err", err)
		return
	}
	// The admin shares client; closing client later closes both.
	for _, g := range p.groups {
		lag, err := measure(client, admin, g)
		if err != nil {
			p.log.Debug("consumer lag", "source", g.Name, "err", err)
			continue
		}
		lagGauge.WithLabelValues(g.Name, g.Kind).Set(float64(lag))
		p.mu.Lock()
		p.last[g.Name] = lag
		p.mu.Unlock()
	}
}

// measure sums a group's lag over the partitions of its topics.
func measure(client sarama.Client, admin sarama.ClusterAdmin, g Group) (int64, error) {
	parts := map[string][]int32{}
	for _, topic := range g.Topics {
		ps, err := client.Partitions(topic)
		if err != nil {
			return 0, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		parts[topic] = ps
	}
	committed, err := admin.ListConsumerGroupOffsets(g.Group, parts)
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		committed, err = &sarama.OffsetFetchResponse{}, nil // a group not yet formed committed nothing
	}
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", g.Group, err)
	}
	var total int64
	for topic, ps := range parts {
		for _, part := range ps {
			newest, err := client.GetOffset(topic, part, sarama.OffsetNewest)
			if err != nil {
				return 0, fmt.Errorf("newest offset of %s/%d: %w", topic, part, err)
			}
			from := int64(-1)
			if b := committed.GetBlock(topic, part); b != nil {
				from = b.Offset
			}
			if from < 0 {
				if !g.Earliest {
					continue
				}
				if from, err = client.GetOffset(topic, part, sarama.OffsetOldest); err != nil {
					return 0, fmt.Errorf("oldest offset of %s/%d: %w", topic, part, err)
				}
			}
			if newest > from {
				total += newest - from
			}
		}
	}
	return total, nil
}
