package jobstore_test

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
)

func open(t *testing.T) *jobstore.Store {
	t.Helper()
	ctx := context.Background()
	s, err := jobstore.Open(ctx, testenv.PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.EnsureSchema(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	return s
}

func states(id uuid.UUID) (create, finish job.Row) {
	c := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	f := c.Add(100 * time.Millisecond)
	create = job.Row{ID: id, Status: job.StatusCreate, CreateDate: c, Sleep: 100, DataSize: 10}
	finish = job.Row{ID: id, Status: job.StatusFinish, CreateDate: c, FinishDate: &f, Sleep: 100, DataSize: 10, Checksum: "sum"}
	return
}

func TestUpsertNeverMovesBackwardsAndIsIdempotent(t *testing.T) {
	s, ctx := open(t), context.Background()
	id := uuid.New()
	create, finish := states(id)
	// A late create after finish, a redelivered finish, all in separate batches.
	for _, batch := range [][]job.Row{{finish}, {create}, {finish}, {create, create}} {
		if err := s.Upsert(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	j, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != job.StatusFinish || j.FinishDate == nil || !j.FinishDate.Equal(*finish.FinishDate) || j.Checksum != "sum" || !j.CreateDate.Equal(create.CreateDate) {
		t.Fatalf("job = %+v", j)
	}
}

func TestUpsertOrderFreeWithinAndAcrossBatches(t *testing.T) {
	s, ctx := open(t), context.Background()
	var rows []job.Row
	ids := make([]uuid.UUID, 300)
	for i := range ids {
		ids[i] = uuid.New()
		c, f := states(ids[i])
		rows = append(rows, c, f, c) // with duplicates
	}
	rand.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for i := 0; i < len(rows); i += 97 {
		if err := s.Upsert(ctx, rows[i:min(i+97, len(rows))]); err != nil {
			t.Fatal(err)
		}
	}
	var finished, total int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'finish' AND finish_date IS NOT NULL), count(*) FROM jobs`).Scan(&finished, &total); err != nil {
		t.Fatal(err)
	}
	if finished != 300 || total != 300 {
		t.Fatalf("%d finished of %d rows, want 300 of 300", finished, total)
	}
}

func TestRedeliveredBatchWritesNothing(t *testing.T) {
	s, ctx := open(t), context.Background()
	_, f := states(uuid.New())
	if err := s.Upsert(ctx, []job.Row{f}); err != nil {
		t.Fatal(err)
	}
	var before, after time.Time
	_ = s.Pool.QueryRow(ctx, `SELECT updated_at FROM jobs`).Scan(&before)
	if err := s.Upsert(ctx, []job.Row{f}); err != nil {
		t.Fatal(err)
	}
	_ = s.Pool.QueryRow(ctx, `SELECT updated_at FROM jobs`).Scan(&after)
	if !after.Equal(before) {
		t.Fatal("a redelivered row that changes nothing must not be rewritten")
	}
}

func TestGetUnknown(t *testing.T) {
	s := open(t)
	if _, err := s.Get(context.Background(), uuid.New()); err != jobstore.ErrNotFound {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestGetManyIsGetForEach(t *testing.T) {
	s, ctx := open(t), context.Background()
	var ids []uuid.UUID
	for i := 0; i < 5; i++ {
		id := uuid.New()
		create, finish := states(id)
		row := create
		if i%2 == 0 {
			row = finish
		}
		if err := s.Upsert(ctx, []job.Row{row}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	unknown := uuid.New()
	got, err := s.GetMany(ctx, append([]uuid.UUID{unknown, ids[0]}, ids...)) // a repeated id too
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("%d jobs, want %d: %+v", len(got), len(ids), got)
	}
	if _, ok := got[unknown]; ok {
		t.Fatalf("an unknown job was found: %+v", got[unknown])
	}
	for _, id := range ids {
		one, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if many := got[id]; many.ID != one.ID || many.Status != one.Status || many.Checksum != one.Checksum ||
			!many.CreateDate.Equal(one.CreateDate) || (many.FinishDate == nil) != (one.FinishDate == nil) {
			t.Fatalf("GetMany %+v, Get %+v", many, one)
		}
	}
}
