package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testKey = "0123456789abcdef0123456789abcdef"

func newTokens(t *testing.T) *Tokens {
	t.Helper()
	tk, err := New(Config{Key: testKey, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestIssueAndParse(t *testing.T) {
	tk := newTokens(t)
	want := Claims{UserID: 7, Username: "ann", Admin: true}
	s, err := tk.Issue(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tk.Parse(s)
	if err != nil || got != want {
		t.Fatalf("parse: %+v %v, want %+v", got, err, want)
	}
	if _, err := tk.Issue(Claims{UserID: 0}); err == nil {
		t.Error("a token for user 0 was issued")
	}
}

func TestParseRefuses(t *testing.T) {
	tk := newTokens(t)
	good, _ := tk.Issue(Claims{UserID: 1, Username: "a"})
	other, _ := New(Config{Key: strings.Repeat("k", 32), TTL: time.Hour})
	forged, _ := other.Issue(Claims{UserID: 1, Username: "a", Admin: true})
	old := newTokens(t)
	old.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, _ := old.Issue(Claims{UserID: 1})
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "1", "iss": Issuer, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "1", "iss": Issuer, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte(testKey))
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "1", "iss": Issuer}).SignedString([]byte(testKey))
	badSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "iss": Issuer, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(testKey))
	otherIss, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "1", "iss": "else", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(testKey))
	for name, tok := range map[string]string{
		"another key": forged, "expired": expired, "alg none": none, "HS512": hs512, "no exp": noExp,
		"subject not an id": badSub, "other issuer": otherIss, "garbage": "abc.def.ghi", "tampered": good[:len(good)-2] + "xx",
	} {
		if c, err := tk.Parse(tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, c)
		}
	}
}

func TestNewRefusesShortKeys(t *testing.T) {
	if _, err := New(Config{Key: "short", TTL: time.Hour}); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	t.Setenv("ORDERS_JWT_KEY", "")
	if _, err := FromEnv(); err == nil {
		t.Error("FromEnv without ORDERS_JWT_KEY succeeded")
	}
	t.Setenv("ORDERS_JWT_KEY", testKey)
	if _, err := FromEnv(); err != nil {
		t.Errorf("FromEnv: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	tk := newTokens(t)
	h := tk.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			t.Error("no claims in the context")
		}
		_ = json.NewEncoder(w).Encode(c)
	}))
	tok, _ := tk.Issue(Claims{UserID: 3, Username: "bob"})
	for _, c := range []struct {
		header string
		code   int
		reason string
	}{
		{"", 401, "no token"},
		{"Basic abc", 401, "Authorization is not"},
		{"Bearer ", 401, "Authorization is not"},
		{"Bearer nope", 401, "bad token"},
		{"Bearer " + tok, 200, `"username":"bob"`},
		{"bearer " + tok, 200, `"user_id":3`},
	} {
		req := httptest.NewRequest("GET", "/orders", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.reason) {
			t.Errorf("%q: %d %s, want %d with %q", c.header, w.Code, w.Body, c.code, c.reason)
		}
		if c.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%q: 401 without WWW-Authenticate", c.header)
		}
	}
	if _, ok := FromContext(httptest.NewRequest("GET", "/", nil).Context()); ok {
		t.Error("claims without a token")
	}
}

func TestPasswords(t *testing.T) {
	PasswordCost = 4 // bcrypt.MinCost: the rules, not the cost, are tested here
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, "correct horse") || CheckPassword(h, "correct horsE") || CheckPassword("not a hash", "x") {
		t.Error("CheckPassword is wrong")
	}
	for _, pw := range []string{"short", strings.Repeat("é", 37), "bad\xffutf8 pass"} {
		if _, err := HashPassword(pw); err == nil {
			t.Errorf("password %q accepted", pw)
		}
	}
}
