package dlq

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

// Outcome of a redrive.
type Outcome string

const (
	// Delivered: the destination answered 2xx.
	Delivered Outcome = "delivered"
	// DeadLettered: it failed again and is back in the dead-letter topic.
	DeadLettered Outcome = "dead_lettered"
	// Aborted: the context ended before an outcome; the letter is where it was.
	Aborted Outcome = "aborted"
)

// Result of one redrive.
type Result struct {
	Letter  Ref     `json:"letter"`
	Outcome Outcome `json:"outcome"`
	// Status is the destination's last answer (0: none).
	Status int `json:"status"`
	// NewLetter is where it was dead-lettered again.
	NewLetter *Ref `json:"new_letter,omitempty"`
	// Err says why it was not delivered.
	Err string `json:"error,omitempty"`
}

// Redriver delivers letters again: to their destination with a delivery
// policy (retries, backoff, timeout, Knative's retry rule), and back to the
// dead-letter topic when that fails.
type Redriver struct {
	Sender *kafkasource.Sender
	Policy delivery.Policy
	// Rewrite maps a destination to the address to send to (nil: as is),
	// e.g. a cluster address to a port-forward.
	Rewrite  func(string) string
	producer sarama.SyncProducer
}

// NewRedriver returns a redriver that writes failed redrives back through
// brokers. Close it when done.
func NewRedriver(brokers []string, p delivery.Policy) (*Redriver, error) {
	prod, err := sarama.NewSyncProducer(brokers, clientConfig())
	if err != nil {
		return nil, fmt.Errorf("dlq: producer on %v: %w", brokers, err)
	}
	return &Redriver{Sender: kafkasource.NewSender(), Policy: p, producer: prod}, nil
}

// Close closes the producer.
func (r *Redriver) Close() error { return r.producer.Close() }

// Redrive delivers l's original event to its destination. An error means
// nothing was decided (no destination, or the letter could not be written
// back): the letter stays where it was, as it was.
func (r *Redriver) Redrive(ctx context.Context, l Letter) (Result, error) {
	res := Result{Letter: l.Ref}
	if l.Destination == "" {
		return res, fmt.Errorf("dlq: letter %s has no %s: nowhere to redrive it", l.Ref, ExtDestination)
	}
	target := l.Destination
	if r.Rewrite != nil {
		target = r.Rewrite(target)
	}
	e := l.Original()
	a := r.Policy.Do(ctx, func(ctx context.Context, _ int) delivery.Attempt {
		return r.Sender.Send(ctx, target, &e, r.timeout())
	})
	res.Status = a.Status
	if a.OK() {
		res.Outcome = Delivered
		return res, nil
	}
	if ctx.Err() != nil {
		res.Outcome = Aborted
		return res, nil
	}
	if a.Err != nil {
		res.Err = a.Err.Error()
	}
	ref, err := r.deadLetter(l, e, a)
	if err != nil {
		return res, err
	}
	res.Outcome, res.NewLetter = DeadLettered, &ref
	return res, nil
}

// timeout bounds one attempt: the policy's, else Knative's default.
func (r *Redriver) timeout() time.Duration {
	if r.Policy.Timeout > 0 {
		return r.Policy.Timeout
	}
	return delivery.Defaults.Timeout
}

// deadLetter writes e back to the letter's topic, as the dead-letter sink
// (a binary-mode KafkaSink) would, with the new knativeerror* context.
func (r *Redriver) deadLetter(l Letter, e event.Event, a delivery.Attempt) (Ref, error) {
	dl := e.Clone()
	dl.SetExtension(ExtDestination, l.Destination)
	dl.SetExtension(ExtCode, strconv.Itoa(a.Status)) // 0: no answer, as the engine writes it
	if len(a.Body) > 0 {
		dl.SetExtension(ExtData, base64.StdEncoding.EncodeToString(a.Body))
	}
	dl.SetExtension(ExtRedriveOf, l.Ref.String())
	pm := &sarama.ProducerMessage{Topic: l.Ref.Topic}
	ctx := binding.WithForceBinary(context.Background())
	if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&dl), pm); err != nil {
		return Ref{}, fmt.Errorf("dlq: encode %s: %w", l.Ref, err)
	}
	p, o, err := r.producer.SendMessage(pm)
	if err != nil {
		return Ref{}, errors.Join(fmt.Errorf("dlq: %s failed again and could not be written back (it stays at %s)", l.Ref, l.Ref), err)
	}
	return Ref{Topic: l.Ref.Topic, Partition: p, Offset: o}, nil
}
