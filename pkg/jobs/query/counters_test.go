package query

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/counters/countertest"
)

func TestCountersRoute(t *testing.T) {
	url := countertest.Database(t, "counters_t")
	t.Setenv("JOBFLOW_COUNTERS_URL", url)
	s, err := counter.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(context.Background(), []counter.Item{{ID: uuid.New(), Deltas: []counter.Delta{{UserID: 5, Total: 3, Unread: 2}}}}); err != nil {
		t.Fatal(err)
	}
	f := NewFunction() // routes only: Start is not needed for /counters
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/counters/5", 200, `{"user_id":5,"total":3,"unread":2}`},
		{"/counters/6", 404, ""},
		{"/counters/x", 400, ""},
		{"/counters/-1", 400, ""},
	} {
		w := httptest.NewRecorder()
		f.Handle(w, httptest.NewRequest("GET", c.path, nil))
		if w.Code != c.code {
			t.Errorf("%s: %d %s, want %d", c.path, w.Code, w.Body, c.code)
		}
		if c.want != "" {
			var got, want any
			_ = json.Unmarshal(w.Body.Bytes(), &got)
			_ = json.Unmarshal([]byte(c.want), &want)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Errorf("%s: %s, want %s", c.path, w.Body, c.want)
			}
		}
	}
	if f2 := newCountersRoute(); f2.store != nil {
		t.Fatal("route connects before first use")
	}
}
