// Package receiver is the logic of the receiver function: it turns a job
// request (REST or CloudEvent) into a created job and its job.created event.
package receiver

import (
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of the receiver; env vars RECEIVER_*.
type Config struct {
	DefaultSleep    time.Duration `envconfig:"DEFAULT_SLEEP" default:"100ms" desc:"work time of a job that does not say"`
	MaxSleep        time.Duration `envconfig:"MAX_SLEEP" default:"10s" desc:"longest work time a job may ask for"`
	DefaultDataSize int64         `envconfig:"DEFAULT_DATA_SIZE" default:"1024" desc:"data size of a job that does not say (bytes)"`
	MaxDataSize     int64         `envconfig:"MAX_DATA_SIZE" default:"1048576" desc:"largest data size a job may ask for (bytes)"`
	Source          string        `envconfig:"SOURCE" default:"/jobflow/receiver" desc:"CloudEvent source of job.created"`
}

// Logic validates requests and builds jobs; it does no I/O.
type Logic struct {
	Config
	Now func() time.Time
	// Live, when set, overrides the limits with the configuration
	// repository's values (keys LiveMaxSleep and LiveMaxDataSize).
	Live *Live
}

// New returns the logic with cfg.
func New(cfg Config) *Logic { return &Logic{Config: cfg, Now: time.Now} }

// Create validates req and returns the new job with id and its job.created
// event. The event id is the job id: a job is created once.
func (l *Logic) Create(req job.Request, id uuid.UUID) (job.Job, event.Event, error) {
	j := job.Job{
		ID: id, Status: job.StatusCreate, CreateDate: l.Now().UTC().Truncate(time.Millisecond),
		Sleep: l.DefaultSleep.Milliseconds(), DataSize: l.DefaultDataSize,
	}
	maxSleep, maxDataSize := l.Live.Load(l.MaxSleep, l.MaxDataSize)
	if req.Sleep != nil {
		if *req.Sleep < 0 || *req.Sleep > maxSleep.Milliseconds() {
			return j, event.Event{}, fn.Invalidf("sleep %d ms: want 0 to %d", *req.Sleep, maxSleep.Milliseconds())
		}
		j.Sleep = *req.Sleep
	}
	if req.DataSize != nil {
		if *req.DataSize < 0 || *req.DataSize > maxDataSize {
			return j, event.Event{}, fn.Invalidf("data_size %d: want 0 to %d", *req.DataSize, maxDataSize)
		}
		j.DataSize = *req.DataSize
	}
	e, err := job.NewEvent(job.TypeCreated, l.Source, j.ID.String(), j)
	if err != nil {
		return j, e, fmt.Errorf("build job.created: %w", err)
	}
	return j, e, nil
}

// IDForEvent is the job id for a dev.jobflow.job.requested event: derived
// from its source and id, so a client that resends the same event (as
// CloudEvents senders do on retry) gets the same job, not a second one.
func IDForEvent(e event.Event) uuid.UUID { return job.DerivedID(job.TypeRequested, e.Source(), e.ID()) }
