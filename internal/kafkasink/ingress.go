// Package kafkasink is the local engine's KafkaSink and Kafka Broker
// ingress: an HTTP server that takes CloudEvents at /<namespace>/<name>, as
// Knative's kafka-sink-ingress and kafka-broker-ingress do, and writes each
// to the destination's topic keyed by its partitionkey, answering 202 only
// once Kafka acknowledged. A KafkaSink writes binary or structured records;
// a Broker always binary (its triggers read them).
//
// Both also take a CloudEvents batch (application/cloudevents-batch+json,
// jobflow's own: Knative's ingresses take one event per request), written
// with one produce and answered 202 only once Kafka acknowledged every
// event of it (batch.go).
package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

// Sink is one KafkaSink.
type Sink struct {
	Namespace, Name, Topic string
	Structured             bool
}

// Path is where the ingress serves the sink.
func (s Sink) Path() string { return "/" + s.Namespace + "/" + s.Name }

var (
	sinkEvents   = metrics.NewCounter("sink_events_total", "Events taken by a KafkaSink ingress, by result.", "sink", "result")
	brokerEvents = metrics.NewCounter("broker_events_total", "Events taken by a Broker ingress, by result.", "broker", "result")
)

// Kinds of destination an ingress serves.
const (
	KindKafkaSink = "KafkaSink"
	KindBroker    = "Broker"
)

// Ingress serves every sink (or every broker) of an engine.
type Ingress struct {
	kind     string
	producer sarama.SyncProducer
	sinks    map[string]Sink
	produced *prometheus.CounterVec
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

// New serves KafkaSinks with a producer connected to brokers.
func New(brokers []string, sinks []Sink, log *slog.Logger) (*Ingress, error) {
	return newIngress(KindKafkaSink, brokers, sinks, sinkEvents, log)
}

// NewBrokers serves Kafka Brokers (each a Sink on the broker's topic) as
// Knative's kafka-broker-ingress does: records are always binary, and what
// is not a valid CloudEvent is a 400.
func NewBrokers(brokers []string, bs []Sink, log *slog.Logger) (*Ingress, error) {
	for i := range bs {
		bs[i].Structured = false
	}
	return newIngress(KindBroker, brokers, bs, brokerEvents, log)
}

func newIngress(kind string, brokers []string, sinks []Sink, produced *prometheus.CounterVec, log *slog.Logger) (*Ingress, error) {
	p, err := sarama.NewSyncProducer(brokers, ProducerConfig())
	if err != nil {
		return nil, fmt.Errorf("%s ingress producer: %w", kind, err)
	}
	in := &Ingress{kind: kind, producer: p, sinks: map[string]Sink{}, produced: produced, log: log, maxBody: 8 << 20}
	for _, s := range sinks {
		in.sinks[s.Path()] = s
	}
	return in, nil
}

// Close closes the producer.
func (in *Ingress) Close() error { return in.producer.Close() }

// ServeHTTP takes one event. As Knative's receiver, it checks the method
// before the path: anything but POST is a 405 wherever it goes.
func (in *Ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		fn.WriteError(w, fn.WithStatus(http.StatusMethodNotAllowed, errors.New("send a CloudEvent with POST")))
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	s, ok := in.sinks[path]
	if !ok {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, fmt.Errorf("no %s at %s", in.kind, path)))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, in.maxBody)
	if fn.IsBatch(r.Header) {
		in.serveBatch(w, r, s)
		return
	}
	e, err := fn.ReadEvent(r)
	if err != nil {
		in.produced.WithLabelValues(s.Name, "invalid").Inc()
		fn.WriteError(w, in.readError(err))
		return
	}
	defer traceHop(r, in.kind, s, e).End()
	pm, err := s.record(r.Context(), e)
	if err != nil {
		in.produced.WithLabelValues(s.Name, "invalid").Inc()
		fn.WriteError(w, err)
		return
	}
	if _, _, err := in.producer.SendMessage(pm); err != nil {
		in.produced.WithLabelValues(s.Name, "error").Inc()
		in.log.Warn("produce failed", strings.ToLower(in.kind), s.Name, "topic", s.Topic, "err", err)
		fn.WriteError(w, fn.Unavailable(fmt.Errorf("write to topic %s: %w", s.Topic, err)))
		return
	}
	in.produced.WithLabelValues(s.Name, "ok").Inc()
	w.WriteHeader(http.StatusAccepted)
}

// record is the Kafka record of e in s's topic: binary mode keyed by its
// partitionkey, or structured if s says so.
func (s Sink) record(ctx context.Context, e *event.Event) (*sarama.ProducerMessage, error) {
	if !s.Structured {
		if pm, ok := binaryRecord(s.Topic, e); ok {
			return pm, nil
		}
	}
	ctx = binding.WithForceBinary(ctx)
	if s.Structured {
		ctx = binding.WithForceStructured(ctx)
	}
	pm := &sarama.ProducerMessage{Topic: s.Topic}
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(e), pm); err != nil {
		return nil, fn.Invalidf("encode event %s: %v", e.ID(), err)
	}
	return pm, nil
}

// readError is the answer to a request that is not a CloudEvent: a
// Broker answers 400 to anything it cannot read as one (Knative's
// kafka-broker-ingress never answers 415), except a body over the limit.
func (in *Ingress) readError(err error) error {
	var tooBig *http.MaxBytesError
	if in.kind != KindBroker || errors.As(err, &tooBig) {
		return err
	}
	return fn.Invalid(err)
}
