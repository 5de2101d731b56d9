package dialogs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of the dialogs function.
type Config struct {
	DialogsURL string `envconfig:"JOBFLOW_DIALOGS_URL" required:"true" desc:"PostgreSQL URL of the dialogs database"`
	// MaxBody bounds a message body (characters).
	MaxBody int `envconfig:"DIALOGS_MAX_BODY" default:"4096" desc:"longest message body accepted (characters)"`
}

// Limits of the input.
const (
	MaxNameLen = 100
)

// Function is the dialogs HTTP function:
//
//	POST   /users                  {"name":"..."}                                 -> 201 user
//	POST   /messages               {"sender_id":1,"recipient_id":2,"body":"..."} -> 201 message
//	POST   /messages/{id}/read                                                     -> 200 {"message":..,"changed":bool}
//	POST   /dialogs/read           {"user_id":2,"peer_id":1}                      -> 200 {"marked":n}
//	DELETE /messages/{id}                                                          -> 204
//	GET    /messages/{id}                                                          -> 200 message
//
// Bad input is a 400 with the reason, an unknown user or message 404.
type Function struct {
	cfg   Config
	store *Store
	mux   *http.ServeMux
}

// NewFunction returns an unstarted dialogs function.
func NewFunction() *Function {
	f := &Function{mux: http.NewServeMux()}
	f.mux.HandleFunc("POST /users", f.createUser)
	f.mux.HandleFunc("POST /messages", f.send)
	f.mux.HandleFunc("POST /messages/{id}/read", f.markRead)
	f.mux.HandleFunc("POST /dialogs/read", f.markDialogRead)
	f.mux.HandleFunc("DELETE /messages/{id}", f.delete)
	f.mux.HandleFunc("GET /messages/{id}", f.get)
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, errors.New(
			"no such endpoint: POST /users, POST /messages, POST /messages/<id>/read, POST /dialogs/read, DELETE /messages/<id>, GET /messages/<id>")))
	})
	return f
}

// Start reads the config, connects and creates the schema.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	if err := fn.Process("", &f.cfg); err != nil {
		return err
	}
	s, err := Open(ctx, f.cfg.DialogsURL)
	if err != nil {
		return err
	}
	f.store = s
	return nil
}

// Stop closes the pool.
func (f *Function) Stop(context.Context) error {
	if f.store != nil {
		f.store.Close()
	}
	return nil
}

// Ready is the readiness probe.
func (f *Function) Ready(context.Context) (bool, error) { return f.store != nil, nil }

// Handle routes a request.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if f.store == nil {
		fn.WriteError(w, fn.Unavailable(errors.New("dialogs not started")))
		return
	}
	f.mux.ServeHTTP(w, r)
}

// decode reads a JSON object strictly: unknown fields and trailing data are errors.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	// encoding/json silently turns invalid UTF-8 and lone surrogate escapes
	// into U+FFFD, so both are refused here, before decoding.
	if err := validText(body); err != nil {
		return fn.Invalidf("request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fn.Invalidf("request body: %v", err)
	}
	if dec.More() {
		return fn.Invalidf("request body: more than one JSON value")
	}
	return nil
}

// storeError maps store errors to statuses. A value PostgreSQL refuses
// (SQLSTATE class 22, data exception) can never succeed: 400. Other database
// errors are 503 (retry) without PostgreSQL's text, which is logged instead.
func storeError(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, ErrNoUser), errors.Is(err, ErrNoMessage):
		return fn.WithStatus(http.StatusNotFound, err)
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22"):
		slog.Warn("dialogs: value refused by the database", "sqlstate", pgErr.Code, "err", err)
		return fn.Invalidf("a value is not accepted by the database (SQLSTATE %s)", pgErr.Code)
	default:
		slog.Error("dialogs: database error", "err", err)
		return fn.Unavailable(errors.New("dialogs database unavailable, retry later"))
	}
}

func pathID(r *http.Request) (int64, error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, fn.Invalidf("message id %q is not a positive integer", raw)
	}
	return id, nil
}

func positive(name string, v *int64) error {
	if v == nil {
		return fmt.Errorf("%s is required", name)
	}
	if *v <= 0 {
		return fmt.Errorf("%s must be a positive integer, got %d", name, *v)
	}
	return nil
}

// CreateUserRequest is the body of POST /users.
type CreateUserRequest struct {
	Name *string `json:"name"`
}

// Validate returns every problem with the request.
func (q CreateUserRequest) Validate() error {
	if q.Name == nil {
		return fn.Invalidf("name is required")
	}
	n := strings.TrimSpace(*q.Name)
	if n == "" || utf8.RuneCountInString(n) > MaxNameLen || !utf8.ValidString(n) {
		return fn.Invalidf("name must be 1 to %d characters of valid UTF-8", MaxNameLen)
	}
	if strings.ContainsRune(n, 0) {
		return fn.Invalidf("name must not contain NUL characters")
	}
	return nil
}

func (f *Function) createUser(w http.ResponseWriter, r *http.Request) {
	var q CreateUserRequest
	if !readRequest(w, r, &q, func() error { return q.Validate() }) {
		return
	}
	u, err := f.store.CreateUser(r.Context(), strings.TrimSpace(*q.Name))
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusCreated, u)
}

// SendRequest is the body of POST /messages.
type SendRequest struct {
	SenderID    *int64  `json:"sender_id"`
	RecipientID *int64  `json:"recipient_id"`
	Body        *string `json:"body"`
}

// Validate returns every problem with the request.
func (q SendRequest) Validate(maxBody int) error {
	var errs []error
	errs = append(errs, positive("sender_id", q.SenderID), positive("recipient_id", q.RecipientID))
	if q.SenderID != nil && q.RecipientID != nil && *q.SenderID == *q.RecipientID {
		errs = append(errs, errors.New("sender_id and recipient_id must differ"))
	}
	switch {
	case q.Body == nil:
		errs = append(errs, errors.New("body is required"))
	case !utf8.ValidString(*q.Body):
		errs = append(errs, errors.New("body must be valid UTF-8"))
	case strings.TrimSpace(*q.Body) == "":
		errs = append(errs, errors.New("body must not be empty"))
	case utf8.RuneCountInString(*q.Body) > maxBody:
		errs = append(errs, fmt.Errorf("body must be at most %d characters", maxBody))
	case strings.ContainsRune(*q.Body, 0):
		errs = append(errs, errors.New("body must not contain NUL characters"))
	}
	if err := errors.Join(errs...); err != nil {
		return fn.Invalid(err)
	}
	return nil
}

func (f *Function) send(w http.ResponseWriter, r *http.Request) {
	var q SendRequest
	if !readRequest(w, r, &q, func() error { return q.Validate(f.cfg.MaxBody) }) {
		return
	}
	m, err := f.store.Send(r.Context(), *q.SenderID, *q.RecipientID, *q.Body)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusCreated, m)
}

// MarkReadResponse answers POST /messages/{id}/read.
type MarkReadResponse struct {
	Message Message `json:"message"`
	Changed bool    `json:"changed"`
}

func (f *Function) markRead(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	m, changed, err := f.store.MarkRead(r.Context(), id)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, MarkReadResponse{Message: m, Changed: changed})
}

// DialogReadRequest is the body of POST /dialogs/read: user_id read
// everything peer_id sent them.
type DialogReadRequest struct {
	UserID *int64 `json:"user_id"`
	PeerID *int64 `json:"peer_id"`
}

// Validate returns every problem with the request.
func (q DialogReadRequest) Validate() error {
	errs := []error{positive("user_id", q.UserID), positive("peer_id", q.PeerID)}
	if q.UserID != nil && q.PeerID != nil && *q.UserID == *q.PeerID {
		errs = append(errs, errors.New("user_id and peer_id must differ"))
	}
	if err := errors.Join(errs...); err != nil {
		return fn.Invalid(err)
	}
	return nil
}

func (f *Function) markDialogRead(w http.ResponseWriter, r *http.Request) {
	var q DialogReadRequest
	if !readRequest(w, r, &q, func() error { return q.Validate() }) {
		return
	}
	n, err := f.store.MarkDialogRead(r.Context(), *q.UserID, *q.PeerID)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, map[string]int64{"marked": n})
}

func (f *Function) delete(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	if err := f.store.Delete(r.Context(), id); err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Function) get(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	m, err := f.store.Message(r.Context(), id)
	if err != nil {
		fn.WriteError(w, storeError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, m)
}

// readRequest decodes r's JSON body into q and checks it with validate; on
// a problem it answers with the reason and returns false.
func readRequest(w http.ResponseWriter, r *http.Request, q any, validate func() error) bool {
	err := decode(r, q)
	if err == nil {
		err = validate()
	}
	if err != nil {
		fn.WriteError(w, err)
		return false
	}
	return true
}
