package receiver

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func testLogic() *Logic {
	l := New(Config{DefaultSleep: 100 * time.Millisecond, MaxSleep: 10 * time.Second, DefaultDataSize: 1024, MaxDataSize: 1 << 20, Source: "/test"})
	l.Now = func() time.Time { return time.Date(2026, 11, 23, 17, 0, 0, 123456789, time.UTC) }
	return l
}

func ptr(v int64) *int64 { return &v }

func TestCreateDefaultsAndEvent(t *testing.T) {
	id := uuid.New()
	j, e, err := testLogic().Create(job.Request{}, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != id || j.Sleep != 100 || j.DataSize != 1024 || j.Status != job.StatusCreate ||
		!j.CreateDate.Equal(time.Date(2026, 11, 23, 17, 0, 0, 123000000, time.UTC)) {
		t.Fatalf("job = %+v", j)
	}
	if e.Type() != job.TypeCreated || e.ID() != id.String() || e.Source() != "/test" || e.Extensions()["partitionkey"] != id.String() {
		t.Fatalf("event = %v", e)
	}
	got, err := job.DecodeJob(e)
	if err != nil || got.ID != id || got.Sleep != 100 {
		t.Fatalf("event data: %+v %v", got, err)
	}
}

func TestCreateValidates(t *testing.T) {
	l := testLogic()
	for name, req := range map[string]job.Request{
		"negative sleep": {Sleep: ptr(-1)},
		"huge sleep":     {Sleep: ptr(10001)},
		"negative size":  {DataSize: ptr(-5)},
		"huge size":      {DataSize: ptr(1<<20 + 1)},
	} {
		_, _, err := l.Create(req, uuid.New())
		var se *fn.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
			t.Errorf("%s: err = %v, want a 400", name, err)
		}
	}
	j, _, err := l.Create(job.Request{Sleep: ptr(0), DataSize: ptr(0)}, uuid.New())
	if err != nil || j.Sleep != 0 || j.DataSize != 0 {
		t.Fatalf("zero values must be allowed: %+v %v", j, err)
	}
}

func TestIDForEventIsStablePerSourceAndID(t *testing.T) {
	a, b := event.New(), event.New()
	a.SetSource("/x")
	a.SetID("1")
	b.SetSource("/x")
	b.SetID("1")
	if IDForEvent(a) != IDForEvent(b) {
		t.Fatal("same source+id must give the same job")
	}
	b.SetID("2")
	if IDForEvent(a) == IDForEvent(b) {
		t.Fatal("different ids must give different jobs")
	}
}
