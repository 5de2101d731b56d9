package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/replay"
)

const replayUsage = `usage: jobflow replay <kafkasource-or-trigger> --to-beginning | --offset N | --time T [--brokers host:port,...]
  Moves the consumer group of a KafkaSource or Trigger (by its metadata.name) so that its records from
  there are delivered again, with its delivery rules. A running engine (JOBFLOW_ADMIN_PORT) pauses the
  source, moves it and resumes it; otherwise the group is moved in Kafka (KAFKA_BROKERS, or the embedded
  broker's data under JOBFLOW_DIR/kafka). T: RFC 3339 or a duration ago (30m).
`

// runReplay is `jobflow replay`.
func runReplay(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("jobflow replay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	beginning := fs.Bool("to-beginning", false, "from the first record")
	offset := fs.Int64("offset", -1, "from this offset in every partition")
	at := fs.String("time", "", "from the first record at or after this time")
	brokers := fs.String("brokers", "", "Kafka brokers, for a stopped engine")
	if err := fs.Parse(interleave(fs, args)); err != nil || fs.NArg() != 1 {
		return usageError(replayUsage)
	}
	name := fs.Arg(0)
	pos := replay.Position{Beginning: *beginning}
	if *offset >= 0 {
		pos.Offset = offset
	}
	if *at != "" {
		t, err := parseWhen(*at)
		if err != nil {
			return err
		}
		pos.Time = t
	}
	if err := pos.Validate(); err != nil {
		return fmt.Errorf("replay: %w\n%s", err, replayUsage)
	}
	cfg, err := engine.LoadConfig()
	if err != nil {
		return err
	}
	ans, err := replayRunning(ctx, cfg.AdminPort, name, pos)
	if errors.Is(err, syscall.ECONNREFUSED) {
		ans, err = replayStopped(ctx, cfg, *brokers, name, pos)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: group %s moved to %s\n", ans.Name, ans.Group, ans.To)
	for _, m := range ans.Moves {
		fmt.Fprintf(out, "  %s/%d: %d -> %d\n", m.Topic, m.Partition, m.From, m.To)
	}
	return nil
}

// replayRunning asks the running engine; a refused connection means none runs.
func replayRunning(ctx context.Context, adminPort int, name string, pos replay.Position) (*engine.ReplayAnswer, error) {
	body, _ := json.Marshal(engine.ReplayRequest{Name: name, Position: pos})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/replay", adminPort), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("engine on port %d answered %s: %s", adminPort, resp.Status, strings.TrimSpace(string(b)))
	}
	var ans engine.ReplayAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("engine's answer: %w", err)
	}
	return &ans, nil
}

// replayStopped moves the group in Kafka itself: the brokers given, else
// KAFKA_BROKERS, else the embedded broker started on its persisted data.
func replayStopped(ctx context.Context, cfg engine.Config, brokers, name string, pos replay.Position) (*engine.ReplayAnswer, error) {
	topo, err := manifest.Load(cfg.Root)
	if err != nil {
		return nil, err
	}
	g, err := groupOf(topo, cfg.Namespace, name)
	if err != nil {
		return nil, err
	}
	addrs := cfg.KafkaBrokers
	if brokers != "" {
		addrs = strings.Split(brokers, ",")
	}
	if len(addrs) == 0 {
		dir := filepath.Join(cfg.StateDir, "kafka")
		if _, err := os.Stat(dir); err != nil || !cfg.KafkaPersist {
			return nil, fmt.Errorf("no engine runs (admin port %d) and no embedded broker data in %s: nothing to replay", cfg.AdminPort, dir)
		}
		b, err := kafkabroker.Start(0, dir)
		if err != nil {
			return nil, err
		}
		defer b.Close() // persists the new offsets
		addrs = b.Addrs()
	}
	moves, err := replay.Reset(ctx, addrs, g, pos)
	if err != nil {
		return nil, err
	}
	return &engine.ReplayAnswer{Name: name, Group: g.ID, To: pos.String(), Moves: moves}, nil
}

// groupOf is the consumer group and topics of the KafkaSource or Trigger
// named name.
func groupOf(topo *manifest.Topology, namespace, name string) (replay.Group, error) {
	ns := func(n string) string {
		if n == "" {
			return namespace
		}
		return n
	}
	for _, s := range topo.Sources {
		if s.Name == name {
			return replay.Group{ID: s.Spec.ConsumerGroup, Topics: s.Spec.Topics}, nil
		}
	}
	for _, t := range topo.Triggers {
		if t.Name != name {
			continue
		}
		broker, brokerNS := t.Spec.Broker, ns(t.Namespace)
		if r := t.Spec.BrokerRef; r != nil {
			broker, brokerNS = r.Name, ns(r.Namespace)
		}
		return replay.Group{ID: plan.TriggerGroup(ns(t.Namespace), t.Name), Topics: []string{plan.BrokerTopic(brokerNS, broker)}}, nil
	}
	return replay.Group{}, fmt.Errorf("no KafkaSource or Trigger named %q in the manifests", name)
}
