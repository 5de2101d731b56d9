package users_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/auth"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/orderstest"
	"github.com/jobflow/jobflow/pkg/orders/users"
)

func start(t *testing.T) (*users.Function, *orderstest.Sink) {
	t.Helper()
	auth.PasswordCost = 4 // bcrypt.MinCost: the tests check rules, not the cost
	sink := orderstest.NewSink(t, "orders-users")
	t.Setenv("JOBFLOW_USERS_URL", testenv.PostgresDB(t))
	t.Setenv("ORDERS_JWT_KEY", orderstest.JWTKey)
	t.Setenv("K_SINK", sink.URL)
	f := users.NewFunction()
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	if ok, err := f.Ready(context.Background()); !ok {
		t.Fatalf("not ready: %v", err)
	}
	return f, sink
}

func TestRegisterLoginProfileAndEvents(t *testing.T) {
	f, sink := start(t)
	h := http.HandlerFunc(f.Handle)
	reg := `{"username":"ann","password":"ann-secret-1","first_name":" Ann ","last_name":"Lee","email":"ann@example.com","phone":"+44 20 7946 0000"}`
	var ann events.UserChanged
	if code, body := orderstest.Do(t, h, "POST", "/users", "", nil, reg, &ann); code != 201 || ann.FirstName != "Ann" || ann.Admin || ann.Version != 1 {
		t.Fatalf("register: %d %s", code, body)
	}
	if code, body := orderstest.Do(t, h, "POST", "/users", "", nil, reg, nil); code != 409 || !strings.Contains(body, "taken") {
		t.Errorf("second ann: %d %s", code, body)
	}
	var admin events.UserChanged
	orderstest.Do(t, h, "POST", "/users", "", nil, `{"username":"admin","password":"admin-secret","first_name":"Ad","last_name":"Min","email":"admin@example.com"}`, &admin)
	if !admin.Admin {
		t.Errorf("the first user named admin is not admin: %+v", admin)
	}

	// Bad input: 400 with the reason, nothing stored or sent.
	for _, c := range []struct{ body, want string }{
		{`{"username":"Bo","password":"long-enough","first_name":"B","last_name":"O","email":"bo@example.com"}`, "username"},
		{`{"username":"bob","password":"short","first_name":"B","last_name":"O","email":"bo@example.com"}`, "at least 8"},
		{`{"username":"bob","password":"long-enough","first_name":"","last_name":"O","email":"bo@example.com"}`, "first_name"},
		{`{"username":"bob","password":"long-enough","first_name":"B","last_name":"O","email":"not an email"}`, "email"},
		{`{"username":"bob","password":"long-enough","first_name":"B","last_name":"O","email":"bo@example.com","phone":"call me"}`, "phone"},
		{`{"username":"bob","password":"long-enough","first_name":"B","last_name":"O","email":"bo@example.com","admin":true}`, "unknown field"},
		{"{\"username\":\"bob\",\"password\":\"long-enough\",\"first_name\":\"B\xff\"}", "UTF-8"},
		{`[1]`, "request body"},
	} {
		if code, body := orderstest.Do(t, h, "POST", "/users", "", nil, c.body, nil); code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%.60s: %d %s, want 400 about %s", c.body, code, body, c.want)
		}
	}

	var login users.LoginAnswer
	if code, body := orderstest.Do(t, h, "POST", "/login", "", nil, `{"username":"ann","password":"ann-secret-1"}`, &login); code != 200 || login.Token == "" {
		t.Fatalf("login: %d %s", code, body)
	}
	for _, bad := range []string{`{"username":"ann","password":"wrong-secret"}`, `{"username":"nobody","password":"ann-secret-1"}`} {
		if code, body := orderstest.Do(t, h, "POST", "/login", "", nil, bad, nil); code != 401 || !strings.Contains(body, "wrong username or password") {
			t.Errorf("login %s: %d %s", bad, code, body)
		}
	}
	if code, _ := orderstest.Do(t, h, "GET", "/users/me", "", nil, "", nil); code != 401 {
		t.Errorf("GET /users/me without a token: %d", code)
	}
	var me events.UserChanged
	if code, body := orderstest.Do(t, h, "GET", "/users/me", login.Token, nil, "", &me); code != 200 || me.UserID != ann.UserID {
		t.Errorf("me: %d %s", code, body)
	}
	var v2 events.UserChanged
	if code, body := orderstest.Do(t, h, "PATCH", "/users/me", login.Token, nil,
		`{"first_name":"Anne","last_name":"Lee","email":"anne@example.com"}`, &v2); code != 200 || v2.Version != 2 || v2.FirstName != "Anne" {
		t.Errorf("update: %d %s", code, body)
	}

	// Every version is an event keyed by the user, with its derived id;
	// the password never leaves the database.
	recs := sink.Events(t, 3)
	got := map[string]events.UserChanged{}
	for _, r := range recs {
		var u events.UserChanged
		if err := events.Decode(r.Event, events.TypeUser, &u); err != nil {
			t.Fatal(err)
		}
		if r.Key != strconv.FormatInt(u.UserID, 10) || r.Event.ID() != events.UserChangedID(u.UserID, u.Version) || r.Event.Source() != events.SourceUsers {
			t.Errorf("event %s key %s source %s for %+v", r.Event.ID(), r.Key, r.Event.Source(), u)
		}
		if strings.Contains(string(r.Event.Data()), "secret") {
			t.Errorf("a password in an event: %s", r.Event.Data())
		}
		got[r.Event.ID()] = u
	}
	if len(recs) != 3 || got[events.UserChangedID(ann.UserID, 2)].Email != "anne@example.com" || !got[events.UserChangedID(admin.UserID, 1)].Admin {
		t.Errorf("events %v", got)
	}
}

// TestNoEventNoUser: with the sink down a registration is refused (503)
// and leaves nothing behind, so it can simply be sent again.
func TestNoEventNoUser(t *testing.T) {
	f, _ := start(t)
	t.Setenv("K_SINK", "http://127.0.0.1:1/down")
	g := users.NewFunction()
	if err := g.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer g.Stop(context.Background())
	reg := `{"username":"cyd","password":"cy-secret-1","first_name":"Cy","last_name":"D","email":"cy@example.com"}`
	if code, body := orderstest.Do(t, http.HandlerFunc(g.Handle), "POST", "/users", "", nil, reg, nil); code != 503 {
		t.Fatalf("register with the sink down: %d %s", code, body)
	}
	if code, body := orderstest.Do(t, http.HandlerFunc(f.Handle), "POST", "/users", "", nil, reg, nil); code != 201 {
		t.Errorf("register again once the sink is up: %d %s", code, body)
	}
}
