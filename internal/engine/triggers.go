package engine

import (
	"fmt"

	"github.com/IBM/sarama"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkasink"
	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/trigger"
)

// Triggers returns the running triggers (a KafkaSource dispatcher each).
func (e *Engine) Triggers() []*kafkasource.Source {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*kafkasource.Source(nil), e.triggers...)
}

// startTriggers starts one consumer group per Trigger on its broker's
// topic, with its filter and a replier that writes replies back into the
// broker's topic, and waits until each has its partitions. Their groups
// already have their starting offsets (startBrokerIngress). When the layer
// stops, after the triggers stopped, their filters and the replies'
// producer are closed.
func (e *Engine) startTriggers(l *layer, ts []plan.Trigger, brokers []string) error {
	if len(ts) == 0 {
		return nil
	}
	producer, err := sarama.NewSyncProducer(brokers, kafkasink.ProducerConfig())
	if err != nil {
		return fmt.Errorf("triggers' reply producer: %w", err)
	}
	var filters []*trigger.Filter
	l.onStop(func() {
		for _, f := range filters {
			f.Close()
		}
		_ = producer.Close()
	})
	sender := e.sender()
	var started []*kafkasource.Source
	for _, t := range ts {
		f := trigger.NewFilter(t.Attributes, t.Filters)
		filters = append(filters, f)
		src, err := kafkasource.New(kafkasource.Config{
			Name: t.Name, Namespace: t.Namespace, Brokers: brokers, Topics: []string{t.Topic},
			Group: t.Group, InitialOffset: "latest", Ordered: t.Ordered, ByKey: t.ByKey,
			MaxInFlight: t.MaxInFlight, CommitInterval: e.cfg.CommitInterval,
			Retrier: kafkasource.Retrier{Sender: sender, Policy: t.Policy, Target: t.Target, DeadLetter: t.DeadLetter},
			Trigger: &kafkasource.Trigger{Filter: f, Replies: trigger.NewReplier(producer, t.Topic)},
		}, e.log)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		e.mu.Lock()
		e.triggers = append(e.triggers, src)
		e.mu.Unlock()
		e.runSource(l, src)
		started = append(started, src)
	}
	return waitPartitions("trigger", started)
}
