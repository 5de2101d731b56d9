package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jobflow/jobflow/pkg/jobs/job"
)

// benchRows are n distinct finished jobs, as pgsink receives them.
func benchRows(n int, at time.Time) []job.Row {
	rows := make([]job.Row, n)
	for i := range rows {
		c := at.Add(time.Duration(i) * time.Microsecond).Truncate(time.Millisecond)
		f := c.Add(100 * time.Millisecond)
		rows[i] = job.Row{ID: uuid.New(), Status: job.StatusFinish, CreateDate: c, FinishDate: &f,
			Sleep: 100, DataSize: 1024, Checksum: "sha256:" + uuid.NewString() + uuid.NewString()}
	}
	return rows
}

// benchLines are n job_events lines (create and finish of n/2 jobs), as
// chsink receives them; each carries its own CloudEvent id.
func benchLines(n int, at time.Time) []job.EventLine {
	lines := make([]job.EventLine, n)
	var id uuid.UUID
	for i := range lines {
		ev, ts := job.StatusCreate, at
		if i%2 == 0 {
			id = uuid.New()
		} else {
			ev, ts = job.StatusFinish, at.Add(100*time.Millisecond)
		}
		lines[i] = job.EventLine{JobID: id, Event: ev, TS: ts, Sleep: 100, DataSize: 1024, EventID: uuid.NewString()}
	}
	return lines
}

// rowEvent is the CloudEvent the converter emits for a row.
func rowEvent(r job.Row) (event.Event, error) {
	data, err := job.EncodeRow(r)
	if err != nil {
		return event.Event{}, err
	}
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource("/jobflow/bench")
	e.SetType(job.TypeRow)
	e.SetSubject(r.ID.String())
	e.SetTime(time.Now().UTC())
	e.SetExtension("partitionkey", r.ID.String())
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return e, err
	}
	return e, nil
}

// csvEvent is the CloudEvent the converter emits for a line: its id is the
// line's event_id.
func csvEvent(l job.EventLine) (event.Event, error) {
	e := event.New()
	e.SetID(l.EventID)
	e.SetSource("/jobflow/bench")
	e.SetType(job.TypeCSV)
	e.SetSubject(l.JobID.String())
	e.SetTime(time.Now().UTC())
	e.SetExtension("partitionkey", l.JobID.String())
	if err := e.SetData("text/csv", job.EncodeCSV(l)); err != nil {
		return e, err
	}
	return e, nil
}

// record encodes e as the KafkaSink ingress does (binary content mode:
// ce_* headers, key from partitionkey, the data as value).
func record(topic string, e event.Event) (*sarama.ProducerMessage, error) {
	pm := &sarama.ProducerMessage{Topic: topic}
	if err := kafka_sarama.WriteProducerMessage(binding.WithForceBinary(context.Background()), binding.ToMessage(&e), pm); err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
	}
	return pm, nil
}

func rowRecords(rows []job.Row) (*heldRecords, error) {
	return records(pgTopic, rows, rowEvent)
}

func lineRecords(lines []job.EventLine) (*heldRecords, error) {
	return records(chTopic, lines, csvEvent)
}

// records encodes each item's event as a record of topic.
func records[T any](topic string, items []T, toEvent func(T) (event.Event, error)) (*heldRecords, error) {
	h := &heldRecords{topic: topic, ends: make([]int, 0, len(items))}
	for _, it := range items {
		e, err := toEvent(it)
		if err != nil {
			return nil, err
		}
		pm, err := record(topic, e)
		if err != nil {
			return nil, err
		}
		h.add(pm)
	}
	return h, nil
}

// heldRecords are records made before a run, kept in one byte slice: a
// *sarama.ProducerMessage with its headers is a dozen pointers, and
// hundreds of thousands of them made the garbage collector of the process
// running the engine mark gigabytes during the run it measured. A byte
// slice has nothing to scan. Each record is its key, its headers and its
// value, each length-prefixed (uvarint).
type heldRecords struct {
	topic string
	buf   []byte
	ends  []int
	keys  map[string]string // header keys, interned by At
}

func (h *heldRecords) Len() int { return len(h.ends) }

// bytesOf is what e encodes to (nil for none).
func bytesOf(e sarama.Encoder) []byte {
	if e == nil {
		return nil
	}
	b, _ := e.Encode()
	return b
}

func (h *heldRecords) add(pm *sarama.ProducerMessage) {
	put := func(b []byte) {
		h.buf = binary.AppendUvarint(h.buf, uint64(len(b)))
		h.buf = append(h.buf, b...)
	}
	put(bytesOf(pm.Key))
	h.buf = binary.AppendUvarint(h.buf, uint64(len(pm.Headers)))
	for _, hd := range pm.Headers {
		put(hd.Key)
		put(hd.Value)
	}
	put(bytesOf(pm.Value))
	h.ends = append(h.ends, len(h.buf))
}

// At is record i as a record to send; its bytes are the held ones (header
// keys are interned: the same few ce_* names on every record; one caller
// at a time).
func (h *heldRecords) At(i int) *kgo.Record {
	start := 0
	if i > 0 {
		start = h.ends[i-1]
	}
	b := h.buf[start:h.ends[i]:h.ends[i]]
	next := func() []byte {
		n, w := binary.Uvarint(b)
		v := b[w : w+int(n) : w+int(n)]
		b = b[w+int(n):]
		return v
	}
	r := &kgo.Record{Topic: h.topic}
	if k := next(); len(k) > 0 {
		r.Key = k
	}
	n, w := binary.Uvarint(b)
	b = b[w:]
	r.Headers = make([]kgo.RecordHeader, n)
	for j := range r.Headers {
		k := next()
		key, ok := h.keys[string(k)]
		if !ok {
			if h.keys == nil {
				h.keys = map[string]string{}
			}
			key = string(k)
			h.keys[key] = key
		}
		r.Headers[j].Key = key
		r.Headers[j].Value = next()
	}
	r.Value = next()
	return r
}

// producer sends the records as the KafkaSink ingress would write them
// (acks from the leader, sarama's hash partitioning of the key). It is
// franz-go's client, not sarama's: the producer stands in for producers
// that run elsewhere, and sarama's cost 2-3 µs and a dozen allocations a
// record in the process that runs the engine (docs/BENCHMARKS.md).
type producer struct {
	cl   *kgo.Client
	errs chan error

	mu   sync.Mutex
	acks []time.Duration // paced records' send to broker acknowledgement, since last taken
}

func (pr *producer) observe(d time.Duration) {
	pr.mu.Lock()
	pr.acks = append(pr.acks, d)
	pr.mu.Unlock()
}

// takeAcks returns the acknowledgement times observed since the last call.
func (pr *producer) takeAcks() []time.Duration {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	a := pr.acks
	pr.acks = nil
	return a
}

// fnv32a is sarama's hash partitioner's hash of a key.
func fnv32a(key []byte) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return h.Sum32()
}

func newProducer(brokers []string) (*producer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("jobflow-bench"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(2*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))),
		kgo.MaxBufferedRecords(100000))
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &producer{cl: cl, errs: make(chan error, 1)}, nil
}

// fail keeps the first produce error.
func (pr *producer) fail(err error) {
	select {
	case pr.errs <- fmt.Errorf("produce: %w", err):
	default:
	}
}

// err is the first produce error, if any.
func (pr *producer) err() error {
	select {
	case err := <-pr.errs:
		return err
	default:
		return nil
	}
}

// flush waits until every record given is acknowledged (or failed).
func (pr *producer) flush(within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := pr.cl.Flush(ctx); err != nil {
		return fmt.Errorf("produce: not acknowledged after %s: %w", within, err)
	}
	return pr.err()
}

// send produces recs and waits until all are acknowledged.
func (pr *producer) send(recs *heldRecords) error {
	ctx := context.Background()
	for i := range recs.Len() {
		pr.cl.Produce(ctx, recs.At(i), func(_ *kgo.Record, err error) {
			if err != nil {
				pr.fail(err)
			}
		})
	}
	return pr.flush(5 * time.Minute)
}

// paced produces n records made by mk at rate per second in 10 ms steps;
// mk runs when the record is due, so times inside it are produce times.
func (pr *producer) paced(ctx context.Context, n, rate int, mk func(i int) (*kgo.Record, error)) error {
	acked := func(r *kgo.Record, err error) {
		if err != nil {
			pr.fail(err)
			return
		}
		pr.observe(time.Since(r.Timestamp))
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := pr.err(); err != nil {
			return err
		}
		due := min(n, int(time.Since(start).Seconds()*float64(rate)))
		for ; sent < due; sent++ {
			r, err := mk(sent)
			if err != nil {
				return err
			}
			r.Timestamp = time.Now()
			pr.cl.Produce(ctx, r, acked)
		}
	}
	return pr.flush(time.Minute)
}

func (pr *producer) Close() error { pr.cl.Close(); return nil }

func itoa(n int) string { return strconv.Itoa(n) }
