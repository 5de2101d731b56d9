package users

import (
	"context"
	"errors"
	"net/http"

	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/httpjson"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Config of the users function.
type Config struct {
	URL string `envconfig:"JOBFLOW_USERS_URL" required:"true" desc:"PostgreSQL URL of the users database"`
	// AdminUsername: the first user registered with this name is the admin.
	AdminUsername string `envconfig:"ORDERS_ADMIN_USERNAME" default:"admin" desc:"the first user registered with this username is the admin (products, couriers); empty: nobody"`
}

// Function is the users HTTP function:
//
//	POST  /users     {"username","password","first_name","last_name","email","phone"} -> 201 user
//	POST  /login     {"username","password}                                          -> 200 {"token","user"}
//	GET   /users/me  (token)                                                         -> 200 user
//	PATCH /users/me  (token) {"first_name","last_name","email","phone"}              -> 200 user (a new version)
//
// Each new version of a user is sent to K_SINK as dev.jobflow.user.changed
// before the write commits: no version is stored without its event.
type Function struct {
	pgdb.Lifecycle // the store's database
	cfg            Config
	store          *Store
	tokens         *auth.Tokens
	emitter        *fn.Emitter
	mux            *http.ServeMux
	dummy          string // a hash compared against when the username is unknown
}

// NewFunction returns an unstarted users function.
func NewFunction() *Function { return &Function{} }

// Start reads the config, connects and checks K_SINK.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	if err := fn.Process("", &f.cfg); err != nil {
		return err
	}
	tokens, err := auth.FromEnv()
	if err != nil {
		return err
	}
	em, err := fn.NewEmitter("users")
	if err != nil {
		return err
	}
	if !em.HasSink(fn.DefaultOutput) {
		return errors.New("users needs K_SINK: where user.changed events go (the orders-users KafkaSink)")
	}
	dummy, err := auth.HashPassword("not anybody's password")
	if err != nil {
		return err
	}
	store, err := Open(ctx, f.cfg.URL)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /users", f.register)
	mux.HandleFunc("POST /login", f.login)
	mux.Handle("GET /users/me", tokens.Middleware(http.HandlerFunc(f.me)))
	mux.Handle("PATCH /users/me", tokens.Middleware(http.HandlerFunc(f.update)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, errors.New("no such endpoint: POST /users, POST /login, GET /users/me, PATCH /users/me")))
	})
	f.DB = store.DB
	f.store, f.tokens, f.emitter, f.mux, f.dummy = store, tokens, em, mux, dummy
	return nil
}

// Handle routes a request.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if f.mux == nil {
		fn.WriteError(w, fn.Unavailable(errors.New("users not started")))
		return
	}
	f.mux.ServeHTTP(w, r)
}

func (f *Function) publish(ctx context.Context, u events.UserChanged) error {
	e, err := events.NewUserChanged(u)
	if err != nil {
		return err
	}
	return f.emitter.Send(ctx, fn.DefaultOutput, e)
}

func (f *Function) register(w http.ResponseWriter, r *http.Request) {
	var q Register
	if err := httpjson.Decode(r, &q); err != nil {
		fn.WriteError(w, err)
		return
	}
	q.Profile = q.Profile.trim()
	err := errors.Join(ValidUsername(q.Username), q.Profile.Validate(), invalid(auth.CheckPasswordRules(q.Password)))
	if err != nil {
		fn.WriteError(w, fn.Invalid(err))
		return
	}
	hash, err := auth.HashPassword(q.Password)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	wantAdmin := f.cfg.AdminUsername != "" && q.Username == f.cfg.AdminUsername
	u, err := f.store.Create(r.Context(), q.Profile, q.Username, hash, wantAdmin, f.publish)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusCreated, u)
}

func invalid(err error) error {
	if err == nil {
		return nil
	}
	return fn.Invalid(err)
}

// LoginAnswer is the answer of POST /login.
type LoginAnswer struct {
	Token string             `json:"token"`
	User  events.UserChanged `json:"user"`
}

func (f *Function) login(w http.ResponseWriter, r *http.Request) {
	var q Login
	if err := httpjson.Decode(r, &q); err != nil {
		fn.WriteError(w, err)
		return
	}
	u, hash, err := f.store.Credentials(r.Context(), q.Username)
	if err != nil && !errors.Is(err, ErrNoUser) {
		fn.WriteError(w, fn.Unavailable(err))
		return
	}
	if errors.Is(err, ErrNoUser) {
		hash = f.dummy // the same work as for a known user: no timing oracle
	}
	if ok := auth.CheckPassword(hash, q.Password); !ok || err != nil {
		fn.WriteError(w, fn.WithStatus(http.StatusUnauthorized, errors.New("wrong username or password")))
		return
	}
	tok, err := f.tokens.Issue(auth.Claims{UserID: u.UserID, Username: u.Username, Admin: u.Admin})
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	fn.WriteJSON(w, http.StatusOK, LoginAnswer{Token: tok, User: u})
}

func (f *Function) me(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.FromContext(r.Context())
	u, err := f.store.User(r.Context(), c.UserID)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, u)
}

func (f *Function) update(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.FromContext(r.Context())
	var p Profile
	if err := httpjson.Decode(r, &p); err != nil {
		fn.WriteError(w, err)
		return
	}
	p = p.trim()
	if err := p.Validate(); err != nil {
		fn.WriteError(w, err)
		return
	}
	u, err := f.store.Update(r.Context(), c.UserID, p, f.publish)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, u)
}

func storeError(err error) error {
	var se *fn.StatusError
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, ErrTaken):
		return fn.WithStatus(http.StatusConflict, err)
	case errors.Is(err, ErrNoUser):
		return fn.WithStatus(http.StatusNotFound, err)
	default:
		return fn.Unavailable(err)
	}
}
