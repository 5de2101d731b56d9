package dialogs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/counters/dialogs"
)

func do(t *testing.T, h http.HandlerFunc, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	h(w, req)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, path, w.Body)
		}
	}
	return w.Code, out
}

func TestDialogsAPI(t *testing.T) {
	t.Setenv("JOBFLOW_DIALOGS_URL", countertest.Database(t, "dialogs_t"))
	f := dialogs.NewFunction()
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	h := f.Handle

	code, a := do(t, h, "POST", "/users", `{"name":"alice"}`)
	if code != 201 || a["name"] != "alice" {
		t.Fatalf("create user: %d %v", code, a)
	}
	_, b := do(t, h, "POST", "/users", `{"name":" bob "}`)
	if b["name"] != "bob" {
		t.Fatalf("name not trimmed: %v", b)
	}
	aid, bid := int64(a["id"].(float64)), int64(b["id"].(float64))

	code, m := do(t, h, "POST", "/messages", `{"sender_id":`+itoa(aid)+`,"recipient_id":`+itoa(bid)+`,"body":"hi"}`)
	if code != 201 || m["read"] != false {
		t.Fatalf("send: %d %v", code, m)
	}
	mid := itoa(int64(m["id"].(float64)))
	do(t, h, "POST", "/messages", `{"sender_id":`+itoa(aid)+`,"recipient_id":`+itoa(bid)+`,"body":"again"}`)
	code, r := do(t, h, "POST", "/messages/"+mid+"/read", "")
	if code != 200 || r["changed"] != true {
		t.Fatalf("mark read: %d %v", code, r)
	}
	if code, r = do(t, h, "POST", "/messages/"+mid+"/read", ""); code != 200 || r["changed"] != false {
		t.Fatalf("mark read again: %d %v", code, r)
	}
	code, r = do(t, h, "POST", "/dialogs/read", `{"user_id":`+itoa(bid)+`,"peer_id":`+itoa(aid)+`}`)
	if code != 200 || r["marked"] != float64(1) {
		t.Fatalf("dialog read: %d %v", code, r)
	}
	if code, _ = do(t, h, "DELETE", "/messages/"+mid, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}

	bad := []struct{ method, path, body, want string }{
		{"POST", "/users", `{}`, "name is required"},
		{"POST", "/users", `{"name":""}`, "name must be"},
		{"POST", "/users", `{"name":"` + strings.Repeat("x", 101) + `"}`, "name must be"},
		{"POST", "/users", `{"name":"a","admin":true}`, "unknown field"},
		{"POST", "/users", `not json`, "request body"},
		{"POST", "/users", `{"name":"a\u0000b"}`, "NUL"},
		{"POST", "/users", "{\"name\":\"a\xffb\"}", "not valid UTF-8"},
		{"POST", "/users", `{"name":"a\ud800b"}`, "unpaired UTF-16 surrogate"},
		{"POST", "/users", `{"name":"a\udc00"}`, "unpaired UTF-16 surrogate"},
		{"POST", "/messages", "{\"sender_id\":1,\"recipient_id\":2,\"body\":\"\xc3\"}", "not valid UTF-8"},
		{"POST", "/messages", `{"sender_id":1,"recipient_id":2,"body":"x\u0000"}`, "NUL"},
		{"POST", "/messages", `{"sender_id":0,"recipient_id":-1,"body":""}`, "sender_id must be a positive integer"},
		{"POST", "/messages", `{"sender_id":1,"recipient_id":1,"body":"x"}`, "must differ"},
		{"POST", "/messages", `{"sender_id":1,"recipient_id":2}`, "body is required"},
		{"POST", "/messages", `{"sender_id":1,"recipient_id":2,"body":"` + strings.Repeat("x", 4097) + `"}`, "at most 4096"},
		{"POST", "/messages/abc/read", ``, "not a positive integer"},
		{"POST", "/dialogs/read", `{"user_id":1}`, "peer_id is required"},
	}
	for _, c := range bad {
		code, out := do(t, h, c.method, c.path, c.body)
		if code != 400 || !strings.Contains(out["error"].(string), c.want) {
			t.Errorf("%s %s %.40s: %d %v, want 400 with %q", c.method, c.path, c.body, code, out, c.want)
		}
		if reason, _ := out["error"].(string); strings.Contains(reason, "SQLSTATE") || strings.Contains(reason, "encoding") {
			t.Errorf("%s %s %.40s: database text leaked: %q", c.method, c.path, c.body, reason)
		}
	}
	// Escaped text that is valid stays as it was: a surrogate pair, a
	// backslash before a u, and a literal U+FFFD the client sent itself.
	for body, want := range map[string]string{
		`{"name":"\ud83d\ude00"}`: "\U0001F600",
		`{"name":"a\\ud800"}`:     `a\ud800`,
		`{"name":"\ufffd"}`:       "\uFFFD",
	} {
		if code, u := do(t, h, "POST", "/users", body); code != 201 || u["name"] != want {
			t.Errorf("POST /users %s: %d %v, want 201 named %q", body, code, u, want)
		}
	}
	notFound := []struct{ method, path, body string }{
		{"POST", "/messages", `{"sender_id":` + itoa(aid) + `,"recipient_id":999999,"body":"x"}`},
		{"POST", "/messages/999999/read", ``},
		{"DELETE", "/messages/999999", ``},
		{"GET", "/messages/999999", ``},
		{"POST", "/dialogs/read", `{"user_id":999998,"peer_id":999999}`},
		{"GET", "/nope", ``},
	}
	for _, c := range notFound {
		if code, out := do(t, h, c.method, c.path, c.body); code != 404 || out["error"] == "" {
			t.Errorf("%s %s: %d %v, want 404", c.method, c.path, code, out)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
