package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/jobflow/jobflow/internal/kafkabroker"
)

// Topics the sinks' KafkaSources read (triggers/pgsink-source.yaml,
// triggers/chsink-source.yaml), with the partitions of brokers/topics.yaml.
const (
	pgTopic    = "postgres-topic"
	chTopic    = "clickhouse-topic"
	partitions = 4
)

// broker is a fresh in-memory Kafka-protocol broker (kfake) for one run,
// listening on 127.0.0.1 so that ClickHouse's Kafka engine reaches it too.
//
// It runs in a child process (this binary with the argument "broker"), as
// an external Kafka does: kfake keeps every record in its heap, and in the
// bench's own process a run's hundreds of thousands of records made the
// garbage collector mark gigabytes while the engine delivered, which the
// latency runs then measured.
type broker struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addrs []string
}

func newBroker() (*broker, error) {
	cmd := exec.Command(os.Args[0], "broker")
	cmd.Stderr = os.Stderr
	if debugging {
		cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
		fmt.Fprintf(os.Stderr, "%s broker process starts (its gctrace times count from here)\n", time.Now().Format("15:04:05.000"))
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("broker process: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("broker process did not say its address: %w", err)
	}
	b := &broker{cmd: cmd, stdin: stdin, addrs: strings.Split(strings.TrimSpace(line), ",")}
	return b, nil
}

// cpu is the broker's CPU seconds so far (user+system, from /proc).
func (b *broker) cpu() float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", b.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name's closing parenthesis: utime and
	// stime are the 12th and 13th (clock ticks, 100 per second).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

// Close stops the broker process (it exits when its stdin closes).
func (b *broker) Close() {
	_ = b.stdin.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// runBroker is the child: it prints the broker's addresses and serves until
// its stdin closes (the bench ended, however it ended).
func runBroker() error {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.DefaultNumPartitions(1),
		kafkabroker.InMemory(),
		kfake.SeedTopics(partitions, pgTopic, chTopic, "receiver-topic", "processor-topic"), kfake.SeedTopics(1, "dead-letter-topic"))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer c.Close()
	defer stallDetector("broker")()
	fmt.Println(strings.Join(c.ListenAddrs(), ","))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}
