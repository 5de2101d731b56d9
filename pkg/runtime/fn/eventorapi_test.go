package fn

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEventOrAPI(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	try := func(method, path string, header map[string]string, body string) (int, bool) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		e := EventOrAPI(w, r, api)
		if e != nil && e.ID() != "1" {
			t.Errorf("%s %s: event id %q", method, path, e.ID())
		}
		return w.Code, e != nil
	}
	ce := map[string]string{"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s", "ce-id": "1", "content-type": "application/json"}
	if code, ev := try("POST", "/", ce, `{}`); ev != true || code != http.StatusOK {
		t.Errorf("a CloudEvent on POST /: event %v, code %d", ev, code)
	}
	if code, ev := try("POST", "/orders", ce, `{}`); ev || code != http.StatusTeapot {
		t.Errorf("POST /orders: event %v, code %d, want the API's", ev, code)
	}
	if code, ev := try("GET", "/", nil, ""); ev || code != http.StatusMethodNotAllowed {
		t.Errorf("GET /: event %v, code %d, want 405", ev, code)
	}
	if code, ev := try("POST", "/", nil, "not an event"); ev || code < 400 || code >= 500 {
		t.Errorf("POST / without a CloudEvent: event %v, code %d, want a 4xx", ev, code)
	}
}
