// Package kafkasink is the local engine's KafkaSink data plane: an HTTP
// ingress that takes CloudEvents at /<namespace>/<sink name>, as Knative's
// kafka-sink-ingress does, and writes each to the sink's topic (binary or
// structured content mode), answering 202 only once Kafka acknowledged.
package kafkasink

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Sink is one KafkaSink.
type Sink struct {
	Namespace, Name, Topic string
	Structured             bool
}

// Path is where the ingress serves the sink.
func (s Sink) Path() string { return "/" + s.Namespace + "/" + s.Name }

var produced = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "jobflow_sink_events_total",
	Help: "Events taken by a KafkaSink ingress, by result.",
}, []string{"sink", "result"})

// Ingress serves every sink.
type Ingress struct {
	producer sarama.SyncProducer
	sinks    map[string]Sink
	log      *slog.Logger
	maxBody  int64
}

// ProducerConfig is the producer configuration: acks from all replicas,
// idempotent, hash partitioning on the record key (the event's partitionkey).
func ProducerConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.ClientID = "jobflow-kafka-sink"
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 10
	return sc
}

// New connects a producer to brokers.
func New(brokers []string, sinks []Sink, log *slog.Logger) (*Ingress, error) {
	p, err := sarama.NewSyncProducer(brokers, ProducerConfig())
	if err != nil {
		return nil, fmt.Errorf("kafka sink producer: %w", err)
	}
	in := &Ingress{producer: p, sinks: map[string]Sink{}, log: log, maxBody: 8 << 20}
	for _, s := range sinks {
		in.sinks[s.Path()] = s
	}
	return in, nil
}

// Close closes the producer.
func (in *Ingress) Close() error { return in.producer.Close() }

// ServeHTTP takes one event.
func (in *Ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	s, ok := in.sinks[path]
	if !ok {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, fmt.Errorf("no KafkaSink at %s", path)))
		return
	}
	if r.Method != http.MethodPost {
		fn.WriteError(w, fn.WithStatus(http.StatusMethodNotAllowed, errors.New("send a CloudEvent with POST")))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, in.maxBody)
	e, err := fn.ReadEvent(r)
	if err != nil {
		produced.WithLabelValues(s.Name, "invalid").Inc()
		fn.WriteError(w, err)
		return
	}
	ctx := binding.WithForceBinary(r.Context())
	if s.Structured {
		ctx = binding.WithForceStructured(r.Context())
	}
	pm := &sarama.ProducerMessage{Topic: s.Topic}
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(e), pm); err != nil {
		produced.WithLabelValues(s.Name, "invalid").Inc()
		fn.WriteError(w, fn.Invalidf("encode event: %v", err))
		return
	}
	if _, _, err := in.producer.SendMessage(pm); err != nil {
		produced.WithLabelValues(s.Name, "error").Inc()
		in.log.Warn("produce failed", "sink", s.Name, "topic", s.Topic, "err", err)
		fn.WriteError(w, fn.Unavailable(fmt.Errorf("write to topic %s: %w", s.Topic, err)))
		return
	}
	produced.WithLabelValues(s.Name, "ok").Inc()
	w.WriteHeader(http.StatusAccepted)
}
