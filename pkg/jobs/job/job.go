// Package job holds the job model shared by every function: the event types
// of the pipeline, the job record, and its status order.
package job

import (
	"time"

	"github.com/google/uuid"
)

// CloudEvent types of the pipeline.
const (
	// TypeRequested asks the receiver for a job (data: Request).
	TypeRequested = "dev.jobflow.job.requested"
	// TypeCreated is emitted by the receiver (data: Job).
	TypeCreated = "dev.jobflow.job.created"
	// TypeFinished is emitted by the processor when the work is done (data: Job).
	TypeFinished = "dev.jobflow.job.finished"
	// TypeFailed is emitted by the processor when the work failed (data: Job with Error).
	TypeFailed = "dev.jobflow.job.failed"
	// TypeRow is a jobs-table row in Kafka Connect "JSON with schema" (data: ConnectRecord).
	TypeRow = "dev.jobflow.job.row"
	// TypeCSV is one job_events line in CSV (data: text/csv).
	TypeCSV = "dev.jobflow.job.csv"
)

// Status of a job. A job only moves forward: create, then finish or fail.
type Status string

const (
	StatusUnknown Status = "unknown"
	StatusCreate  Status = "create"
	StatusFinish  Status = "finish"
	StatusFail    Status = "fail"
)

// Rank orders statuses so that a late or redelivered event never moves a
// job backwards: unknown < create < finish = fail.
func (s Status) Rank() int {
	switch s {
	case StatusCreate:
		return 1
	case StatusFinish, StatusFail:
		return 2
	}
	return 0
}

// Valid reports whether s is a status a job can be stored with.
func (s Status) Valid() bool { return s.Rank() > 0 }

// Request is what a client asks for: how long the work sleeps (ms) and how
// many bytes of data it produces. Both are optional.
type Request struct {
	Sleep    *int64 `json:"sleep,omitempty"`
	DataSize *int64 `json:"data_size,omitempty"`
}

// Job is the record that travels the pipeline.
type Job struct {
	ID         uuid.UUID  `json:"id"`
	Status     Status     `json:"status,omitempty"`
	CreateDate time.Time  `json:"create_date"`
	FinishDate *time.Time `json:"finish_date,omitempty"`
	Sleep      int64      `json:"sleep"`
	DataSize   int64      `json:"data_size"`
	Checksum   string     `json:"checksum,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// idSpace is the UUID namespace for ids derived from other ids.
var idSpace = uuid.MustParse("5b1e8a52-7c1f-4f0e-9a57-6c0f3b9d2e41")

// DerivedID returns a stable id for something derived from parts (an event
// source and id, an output name): the same input always gives the same id,
// so a redelivered event produces outputs that sinks recognise as duplicates.
func DerivedID(parts ...string) uuid.UUID {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return uuid.NewSHA1(idSpace, b)
}
