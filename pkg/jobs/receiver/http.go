package receiver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/config/client"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// CreatePath is the REST endpoint of the older design.
const CreatePath = "/create/job"

// Function is the receiver as an HTTP function: it answers the REST form on
// POST /create/job and CloudEvents (binary or structured) on POST /.
// It is an HTTP function rather than a CloudEvent one so that both forms
// work on Knative too, where func's CloudEvent wrapper refuses plain HTTP.
type Function struct {
	logic   *Logic
	emitter *fn.Emitter
}

// NewFunction returns an unstarted receiver.
func NewFunction() *Function { return &Function{} }

// firstValuesWait is how long a starting instance waits (not ready) for
// its live limits before it takes jobs with the environment's.
const firstValuesWait = 2 * time.Second

// Start reads RECEIVER_* and K_SINK, and follows the live limits when
// JOBFLOW_CONFIG_URL names the configuration service; the receiver needs
// K_SINK, since a job it accepted must reach the pipeline.
func (f *Function) Start(context.Context, map[string]string) error {
	var cfg Config
	if err := fn.Process("RECEIVER", &cfg); err != nil {
		return err
	}
	em, err := fn.NewEmitter("receiver")
	if err != nil {
		return err
	}
	if !em.HasSink(fn.DefaultOutput) {
		em.Close()
		return errors.New("receiver needs K_SINK: the address jobs are sent to")
	}
	c, err := client.FromEnv(fn.NewLogger(os.Getenv("LOG_LEVEL"), "receiver"), LiveKeys)
	if err != nil {
		em.Close()
		return err
	}
	l := New(cfg)
	l.Live = NewLive(c, cfg)
	l.Live.Start()
	f.logic, f.emitter = l, em
	return nil
}

// Stop stops the emitter (after the server drained its requests) and the
// live limits.
func (f *Function) Stop(context.Context) error {
	if f.emitter != nil {
		f.emitter.Close()
	}
	if f.logic != nil {
		f.logic.Live.Stop()
	}
	return nil
}

// Ready is the readiness probe: started, and the live limits arrived (or
// firstValuesWait passed, or there is no configuration service).
func (f *Function) Ready(context.Context) (bool, error) {
	return f.emitter != nil && f.logic.Live.Settled(firstValuesWait), nil
}

// Handle serves both request forms.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == CreatePath && r.Method == http.MethodPost:
		f.handleREST(w, r)
	case r.URL.Path == "/" && r.Method == http.MethodPost:
		f.handleCloudEvent(w, r)
	case r.URL.Path == CreatePath || r.URL.Path == "/":
		fn.WriteError(w, fn.WithStatus(http.StatusMethodNotAllowed, errors.New("use POST")))
	default:
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound,
			errors.New("no such endpoint: POST /create/job (JSON) or POST / (CloudEvent)")))
	}
}

// handleREST: optional JSON body {"sleep":ms,"data_size":bytes}; answers the job.
func (f *Function) handleREST(w http.ResponseWriter, r *http.Request) {
	var req job.Request
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	if len(body) > 0 {
		if err := job.DecodeJSON(body, &req, true); err != nil {
			fn.WriteError(w, fn.Invalid(err))
			return
		}
	}
	j, _, err := f.create(r.Context(), req, uuid.New())
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	fn.WriteJSON(w, http.StatusOK, restAnswer{ID: j.ID, CreateDate: j.CreateDate, Sleep: j.Sleep, DataSize: j.DataSize})
}

// restAnswer is the REST answer of the older design.
type restAnswer struct {
	ID         uuid.UUID `json:"id"`
	CreateDate time.Time `json:"create_date"`
	Sleep      int64     `json:"sleep"`
	DataSize   int64     `json:"data_size"`
}

// handleCloudEvent: a dev.jobflow.job.requested event; answers 200 with the
// job.created event.
func (f *Function) handleCloudEvent(w http.ResponseWriter, r *http.Request) {
	e, err := fn.ReadEvent(r)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	if e.Type() != job.TypeRequested {
		fn.WriteError(w, fn.Invalidf("event type %q: the receiver takes %s", e.Type(), job.TypeRequested))
		return
	}
	var req job.Request
	if len(e.Data()) > 0 {
		if err := job.Decode(*e, &req, true); err != nil {
			fn.WriteError(w, fn.Invalid(err))
			return
		}
	}
	_, created, err := f.create(r.Context(), req, IDForEvent(*e))
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	_ = cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(&created), http.StatusOK, w)
}

// create builds the job and hands its event to the sink before answering.
func (f *Function) create(ctx context.Context, req job.Request, id uuid.UUID) (job.Job, event.Event, error) {
	if f.logic == nil {
		return job.Job{}, event.Event{}, fn.Unavailable(errors.New("receiver not started"))
	}
	j, e, err := f.logic.Create(req, id)
	if err != nil {
		return j, e, err
	}
	return j, e, f.emitter.Send(ctx, fn.DefaultOutput, e)
}
