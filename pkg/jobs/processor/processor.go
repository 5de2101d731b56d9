// Package processor is the logic of the processor function: it does a job's
// work (a sleep and some data) and emits job.finished, or job.failed when the
// job cannot be done.
package processor

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/config/client"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/limits"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of the processor; env vars PROCESSOR_*.
type Config struct {
	MaxSleep    time.Duration `envconfig:"MAX_SLEEP" default:"30s" desc:"a job asking to sleep longer fails (job.failed) instead of running"`
	MaxDataSize int64         `envconfig:"MAX_DATA_SIZE" default:"16777216" desc:"a job asking for more data fails (job.failed)"`
	Source      string        `envconfig:"SOURCE" default:"/jobflow/processor" desc:"CloudEvent source of job.finished / job.failed"`
}

// Processor does the work of a job.
type Processor struct {
	Config
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time
	// Live, when set, overrides the limits with the configuration
	// repository's values (keys LiveMaxSleep and LiveMaxDataSize).
	Live *Live
}

// The live configuration keys of the processor's limits.
const (
	LiveMaxSleep    = "jobs/processor/max-sleep"
	LiveMaxDataSize = "jobs/processor/max-data-size"
)

// Live is the processor's limits as live configuration, the environment's
// values their defaults.
type Live = limits.Live

// firstValuesWait is how long a starting instance waits (not ready) for
// its live values before it takes jobs with the environment's.
const firstValuesWait = 2 * time.Second

// NewLive binds the limits to c (not yet running).
func NewLive(c *client.Client, cfg Config) *Live {
	return limits.New(c, "jobs/processor", cfg.MaxSleep, cfg.MaxDataSize)
}

// New returns a processor configured from PROCESSOR_*, its limits live
// when JOBFLOW_CONFIG_URL names the configuration service.
func New() (*Processor, error) {
	var cfg Config
	if err := fn.Process("PROCESSOR", &cfg); err != nil {
		return nil, err
	}
	c, err := client.FromEnv(fn.NewLogger(os.Getenv("LOG_LEVEL"), "processor"), "jobs/processor/*")
	if err != nil {
		return nil, err
	}
	return &Processor{Config: cfg, Sleep: delivery.Sleep, Now: time.Now, Live: NewLive(c, cfg)}, nil
}

// Start follows the live limits.
func (p *Processor) Start(context.Context, map[string]string) error {
	p.Live.Start()
	return nil
}

// Stop ends the subscription.
func (p *Processor) Stop(context.Context) error {
	p.Live.Stop()
	return nil
}

// Ready is the readiness probe: a starting instance takes no job until its
// live limits arrived (or firstValuesWait passed, or there is no service),
// so a job is not judged by the environment's limits for want of a moment.
func (p *Processor) Ready(context.Context) (bool, error) {
	return p.Live.Settled(firstValuesWait), nil
}

// limits are the limits in force now.
func (p *Processor) limits() (maxSleep time.Duration, maxDataSize int64) {
	return p.Live.Load(p.MaxSleep, p.MaxDataSize)
}

// Handle takes a job.created event. A job that asks too much ends as
// job.failed (the failure is the job's, not the delivery's); a cancelled
// delivery returns an error so that the job is delivered again.
func (p *Processor) Handle(ctx context.Context, in event.Event) ([]fn.Output, error) {
	if in.Type() != job.TypeCreated {
		return nil, fn.Invalidf("event type %q: the processor takes %s", in.Type(), job.TypeCreated)
	}
	j, err := job.DecodeJob(in)
	if err != nil {
		return nil, fn.Invalid(err)
	}
	typ := job.TypeFinished
	maxSleep, maxDataSize := p.limits()
	switch {
	case time.Duration(j.Sleep)*time.Millisecond > maxSleep:
		typ, j.Status, j.Error = job.TypeFailed, job.StatusFail, fmt.Sprintf("sleep %d ms is over the limit of %s", j.Sleep, maxSleep)
	case j.DataSize > maxDataSize:
		typ, j.Status, j.Error = job.TypeFailed, job.StatusFail, fmt.Sprintf("data_size %d is over the limit of %d", j.DataSize, maxDataSize)
	default:
		if err := p.Sleep(ctx, time.Duration(j.Sleep)*time.Millisecond); err != nil {
			return nil, fmt.Errorf("job %s interrupted: %w", j.ID, err)
		}
		j.Status, j.Checksum = job.StatusFinish, Checksum(j)
	}
	done := p.Now().UTC().Truncate(time.Millisecond)
	j.FinishDate = &done
	// The id depends only on the job: a redelivered job.created yields an
	// event that sinks recognise as the same one.
	out, err := job.NewEvent(typ, p.Source, job.DerivedID(typ, j.ID.String()).String(), j)
	if err != nil {
		return nil, err
	}
	return fn.Emit(out), nil
}

// Checksum is the job's "result": the SHA-256 of data_size bytes generated
// from the job id, so that the work is deterministic and checkable.
func Checksum(j job.Job) string {
	h := sha256.New()
	var block [32]byte
	seed := sha256.Sum256(j.ID[:])
	for written, n := int64(0), uint64(0); written < j.DataSize; n++ {
		binary.BigEndian.PutUint64(seed[:8], n)
		block = sha256.Sum256(seed[:])
		chunk := min(j.DataSize-written, int64(len(block)))
		h.Write(block[:chunk])
		written += chunk
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HandleBatch takes a batched delivery (local engine): its jobs are worked
// on concurrently, so their sleeps overlap, and their outcomes are emitted
// together; one invalid event fails the batch, whose events the engine
// then delivers one by one (fn.HandleEach).
func (p *Processor) HandleBatch(ctx context.Context, in []event.Event) ([]fn.Output, error) {
	return fn.HandleEach(ctx, p, in)
}
