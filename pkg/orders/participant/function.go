package participant

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/once"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Service is a participant's whole logic: its Ledger and its user-facing
// HTTP API (behind the users' tokens).
type Service interface {
	Ledger
	// Routes registers the user-facing endpoints; every request reaching
	// them carries valid claims (auth.FromContext).
	Routes(mux *http.ServeMux)
}

// Spec describes a participant function.
type Spec struct {
	Name   string // the function's name: payment, stock, delivery
	URLEnv string // the environment variable with its database's URL
	Schema string // its tables (Schema above is added)
	// Open builds the service on the database once it is connected and
	// its schema applied; it reads the service's own config.
	Open func(ctx context.Context, db *pgdb.DB) (Service, error)
}

// Function is a participant as an HTTP function: CloudEvents POSTed to /
// (the Trigger deliveries) go to the Handler, every other request to the
// service's API behind the token middleware.
type Function struct {
	spec           Spec
	pgdb.Lifecycle // the participant's database
	handler        *Handler
	api            http.Handler
}

// NewFunction returns an unstarted participant function.
func NewFunction(spec Spec) *Function { return &Function{spec: spec} }

// Start reads the config, connects, applies the schema and builds the service.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	url := os.Getenv(f.spec.URLEnv)
	if url == "" {
		return fmt.Errorf("%s is required: the PostgreSQL URL of the %s database", f.spec.URLEnv, f.spec.Name)
	}
	tokens, err := auth.FromEnv()
	if err != nil {
		return err
	}
	var commit once.Config
	if err := fn.Process("", &commit); err != nil {
		return err
	}
	db, err := pgdb.Open(ctx, f.spec.Name+" database", url, Schema+f.spec.Schema)
	if err != nil {
		return err
	}
	svc, err := f.spec.Open(ctx, db)
	if err != nil {
		db.Close()
		return err
	}
	mux := http.NewServeMux()
	svc.Routes(mux)
	f.DB, f.handler, f.api = db, NewHandler(db.Pool, svc, commit), tokens.Middleware(mux)
	return nil
}

// Handle routes a request: a CloudEvent on POST / to the Handler (its
// answer is the reply event), anything else to the API.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if f.handler == nil {
		fn.WriteError(w, fn.Unavailable(fmt.Errorf("%s not started", f.spec.Name)))
		return
	}
	in := fn.EventOrAPI(w, r, f.api)
	if in == nil {
		return
	}
	reply, err := f.handler.Handle(r.Context(), *in)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	if reply == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	_ = cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(reply), http.StatusOK, w)
}
