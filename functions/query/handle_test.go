package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The instanced HTTP shape func's wrapper looks for.
type instancedHTTP interface {
	Handle(w http.ResponseWriter, r *http.Request)
	Start(ctx context.Context, cfg map[string]string) error
	Ready(ctx context.Context) (bool, error)
}

func TestNewHasTheFuncInstancedShape(t *testing.T) {
	var f any = New()
	if _, ok := f.(instancedHTTP); !ok {
		t.Fatalf("%T does not have the instanced HTTP function methods", f)
	}
}

func TestStartRefusesMissingConfig(t *testing.T) {
	for _, k := range []string{"K_SINK", "JOBFLOW_POSTGRES_URL", "JOBFLOW_CLICKHOUSE_ADDR", "JOBFLOW_DIALOGS_URL", "JOBFLOW_COUNTERS_URL"} {
		t.Setenv(k, "")
	}
	if err := New().Start(context.Background(), nil); err == nil {
		t.Fatal("Start must fail without its required settings")
	}
}

func TestUnknownPathIsA404WithAReason(t *testing.T) {
	w := httptest.NewRecorder()
	New().Handle(w, httptest.NewRequest(http.MethodGet, "/no/such/path", nil))
	if w.Code != http.StatusNotFound && w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 404 (or 503 before Start)", w.Code)
	}
	if w.Body.Len() == 0 {
		t.Fatal("no reason in the body")
	}
}
