// Package auth is the orders domain's users' tokens and passwords: HS256
// JSON Web Tokens signed with the key in ORDERS_JWT_KEY (on Knative the
// secret orders-auth, key jwt-key; the local engine makes one per state
// directory), an HTTP middleware that lets only requests with a valid
// token through (401 with a reason otherwise), and bcrypt password hashes.
//
// Every function with user-facing calls reads the same key:
//
//	envs:
//	  - name: ORDERS_JWT_KEY
//	    value: "{{ secret:orders-auth:jwt-key }}"
//
// and wraps its routes with Tokens.Middleware; a handler reads who called
// with FromContext.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Issuer is the iss claim of every token.
const Issuer = "jobflow-orders"

// MinKeyBytes is the shortest signing key accepted: HS256 wants at least
// as many bytes as its hash (RFC 7518 §3.2).
const MinKeyBytes = 32

// Config of the token keeper.
type Config struct {
	Key string        `envconfig:"ORDERS_JWT_KEY" required:"true" desc:"HS256 signing key of users' tokens (at least 32 bytes; on Knative the secret orders-auth key jwt-key)"`
	TTL time.Duration `envconfig:"ORDERS_TOKEN_TTL" default:"24h" desc:"how long a token issued at login is valid"`
}

// Claims are what a token says about its holder.
type Claims struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Admin    bool   `json:"admin"`
}

// Tokens issues and checks tokens with one key.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// New returns a token keeper; the key must be at least MinKeyBytes long.
func New(cfg Config) (*Tokens, error) {
	if len(cfg.Key) < MinKeyBytes {
		return nil, fmt.Errorf("ORDERS_JWT_KEY: %d bytes, want at least %d", len(cfg.Key), MinKeyBytes)
	}
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("ORDERS_TOKEN_TTL %s: want a positive duration", cfg.TTL)
	}
	return &Tokens{key: []byte(cfg.Key), ttl: cfg.TTL, now: time.Now}, nil
}

// FromEnv reads Config from the environment and returns its Tokens.
func FromEnv() (*Tokens, error) {
	var cfg Config
	if err := fn.Process("", &cfg); err != nil {
		return nil, err
	}
	return New(cfg)
}

// tokenClaims is the JWT body: the registered claims (sub is the user id)
// and ours.
type tokenClaims struct {
	Username string `json:"username"`
	Admin    bool   `json:"admin,omitempty"`
	jwt.RegisteredClaims
}

// Issue signs a token for c, valid for the configured TTL.
func (t *Tokens) Issue(c Claims) (string, error) {
	if c.UserID <= 0 {
		return "", fmt.Errorf("issue token: user id %d", c.UserID)
	}
	now := t.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{
		Username: c.Username,
		Admin:    c.Admin,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   strconv.FormatInt(c.UserID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
	})
	s, err := tok.SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Parse checks a token (signature with HS256 only, issuer, expiry) and
// returns its claims.
func (t *Tokens) Parse(token string) (Claims, error) {
	var tc tokenClaims
	_, err := jwt.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now))
	if err != nil {
		return Claims{}, err
	}
	id, err := strconv.ParseInt(tc.Subject, 10, 64)
	if err != nil || id <= 0 {
		return Claims{}, fmt.Errorf("subject %q is not a user id", tc.Subject)
	}
	return Claims{UserID: id, Username: tc.Username, Admin: tc.Admin}, nil
}

type ctxKey struct{}

// WithClaims returns ctx carrying c (what Middleware does for a valid token).
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the claims of the caller's token, set by Middleware.
func FromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(Claims)
	return c, ok
}

// ErrUnauthorized is the cause of every 401.
var ErrUnauthorized = errors.New("unauthorized")

// Middleware lets a request through only with a valid token in
// "Authorization: Bearer <token>", its claims in the request's context;
// otherwise it answers 401 with the reason and a WWW-Authenticate header.
func (t *Tokens) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := t.FromRequest(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jobflow-orders"`)
			fn.WriteError(w, fn.WithStatus(http.StatusUnauthorized, err))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
	})
}

// FromRequest reads and checks the bearer token of r.
func (t *Tokens) FromRequest(r *http.Request) (Claims, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Claims{}, fmt.Errorf("%w: no token: send Authorization: Bearer <token> (POST /login gives one)", ErrUnauthorized)
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return Claims{}, fmt.Errorf("%w: Authorization is not \"Bearer <token>\"", ErrUnauthorized)
	}
	c, err := t.Parse(strings.TrimSpace(tok))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: bad token: %v", ErrUnauthorized, err)
	}
	return c, nil
}
