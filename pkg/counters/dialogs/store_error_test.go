package dialogs

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/pkg/counters/countertest"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// A value PostgreSQL refuses reaches the client as a 400 without the
// database's text, even if it got past the request's validation.
func TestStoreErrorHidesDatabaseText(t *testing.T) {
	s, err := Open(context.Background(), countertest.Database(t, "dialogs_storeerr"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.CreateUser(context.Background(), "a\x00b")
	if err == nil {
		t.Fatal("PostgreSQL took a NUL byte")
	}
	mapped := storeError(err)
	if code := fn.StatusOf(mapped); code != http.StatusBadRequest {
		t.Fatalf("status %d for %v, want 400", code, err)
	}
	if strings.Contains(mapped.Error(), "invalid byte sequence") || strings.Contains(mapped.Error(), "0x00") {
		t.Fatalf("database text leaked: %q", mapped.Error())
	}
}
