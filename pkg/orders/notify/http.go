package notify

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Config of the notify function.
type Config struct {
	URL string `envconfig:"JOBFLOW_NOTIFY_URL" required:"true" desc:"PostgreSQL URL of the notify database"`
}

// Function is the notify HTTP function:
//
//	POST /               a CloudEvent: dev.jobflow.order.confirmed / .rejected (Trigger notify-decisions)
//	                     or dev.jobflow.user.changed (KafkaSource notify-users)  -> 202
//	GET  /notifications  (token) the caller's messages, newest first             -> 200 [notification]
type Function struct {
	pgdb.Lifecycle // the store's database
	store          *Store
	api            http.Handler
}

// NewFunction returns an unstarted notify function.
func NewFunction() *Function { return &Function{} }

// Start reads the config and connects.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	var cfg Config
	if err := fn.Process("", &cfg); err != nil {
		return err
	}
	tokens, err := auth.FromEnv()
	if err != nil {
		return err
	}
	store, err := Open(ctx, cfg.URL)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notifications", f.list)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, errors.New("no such endpoint: GET /notifications, POST / (CloudEvent)")))
	})
	f.DB = store.DB
	f.store, f.api = store, tokens.Middleware(mux)
	return nil
}

// Handle routes a request: CloudEvents on POST /, the API elsewhere.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if f.api == nil {
		fn.WriteError(w, fn.Unavailable(errors.New("notify not started")))
		return
	}
	in := fn.EventOrAPI(w, r, f.api)
	if in == nil {
		return
	}
	if err := f.handle(r.Context(), *in); err != nil {
		fn.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (f *Function) handle(ctx context.Context, in event.Event) error {
	switch in.Type() {
	case events.TypeConfirmed, events.TypeRejected:
		var d events.Decided
		if err := events.Decode(in, in.Type(), &d); err != nil {
			return fn.Invalid(err)
		}
		if err := d.Validate(); err != nil {
			return fn.Invalidf("%s %s: %v", in.Type(), in.ID(), err)
		}
		decision := "confirmed"
		if in.Type() == events.TypeRejected {
			decision = "rejected"
		}
		return unavailable(f.store.Decided(ctx, d, decision))
	case events.TypeUser:
		var u events.UserChanged
		if err := events.Decode(in, in.Type(), &u); err != nil {
			return fn.Invalid(err)
		}
		if u.UserID <= 0 || u.Version <= 0 {
			return fn.Invalidf("%s %s: user_id %d and version %d must be positive", in.Type(), in.ID(), u.UserID, u.Version)
		}
		return unavailable(f.store.Customer(ctx, u))
	}
	return fn.Invalidf("event type %q: notify takes %s, %s and %s", in.Type(), events.TypeConfirmed, events.TypeRejected, events.TypeUser)
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fn.Unavailable(err)
}

func (f *Function) list(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.FromContext(r.Context())
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			fn.WriteError(w, fn.Invalidf("limit %q: want 1 to 1000", s))
			return
		}
		limit = n
	}
	list, err := f.store.List(r.Context(), c.UserID, limit)
	if err != nil {
		fn.WriteError(w, fn.Unavailable(err))
		return
	}
	if list == nil {
		list = []Notification{}
	}
	fn.WriteJSON(w, http.StatusOK, list)
}
