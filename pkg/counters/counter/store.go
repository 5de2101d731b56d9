package counter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Schema creates the counters database's tables; safe to run concurrently
// and repeatedly.
//
// counters.unread may be negative for a while: a "marked read" event can be
// applied before the "created" event of the same message.
const Schema = `
SELECT pg_advisory_xact_lock(7463006);
CREATE TABLE IF NOT EXISTS counters (
	user_id    bigint PRIMARY KEY,
	total      bigint NOT NULL DEFAULT 0,
	unread     bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS users (
	id         bigint PRIMARY KEY,
	name       text,
	deleted    boolean NOT NULL DEFAULT false,
	source_lsn bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS processed_events (
	id           uuid PRIMARY KEY,
	processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS processed_events_at ON processed_events USING brin (processed_at);`

// Store is the counters database.
type Store struct{ *pgdb.DB }

// Open connects to url and creates the schema.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := pgdb.Open(ctx, "counters database", url, Schema)
	if err != nil {
		return nil, err
	}
	return &Store{db}, nil
}

// ApplyResult says what a batch did.
type ApplyResult struct {
	Applied    int // events recorded for the first time
	Duplicates int // events already recorded (or twice in the batch)
	Users      int // counters rows updated
}

const (
	insertProcessed = `INSERT INTO processed_events (id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING RETURNING id`
	upsertCounters  = `
INSERT INTO counters AS c (user_id, total, unread)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
ON CONFLICT (user_id) DO UPDATE SET
	total = c.total + EXCLUDED.total, unread = c.unread + EXCLUDED.unread, updated_at = now()
WHERE EXCLUDED.total <> 0 OR EXCLUDED.unread <> 0`
	upsertUsers = `
INSERT INTO users AS u (id, name, deleted, source_lsn)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::bigint[])
ON CONFLICT (id) DO UPDATE SET
	name = EXCLUDED.name, deleted = EXCLUDED.deleted, source_lsn = EXCLUDED.source_lsn, updated_at = now()
WHERE EXCLUDED.source_lsn >= u.source_lsn`
)

// Apply applies a batch of items in one transaction: it records their ids,
// and only for the ids not recorded before adds the batch's deltas, summed
// per user (one row update per user), and replicates the newest state of
// each user. Rows are written in key order, so concurrent batches cannot
// deadlock; a deadlock or serialization failure is retried anyway.
func (s *Store) Apply(ctx context.Context, items []Item) (ApplyResult, error) {
	var res ApplyResult
	var err error
	for attempt := 1; ; attempt++ {
		res, err = s.apply(ctx, items)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 3 || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return res, err
		}
	}
}

func (s *Store) apply(ctx context.Context, items []Item) (ApplyResult, error) {
	var res ApplyResult
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	fresh, err := recordIDs(ctx, tx, items)
	if err != nil {
		return res, err
	}
	deltas, users := sum(items, fresh, &res)
	if err := addDeltas(ctx, tx, deltas); err != nil {
		return res, err
	}
	res.Users = len(deltas)
	if err := replicateUsers(ctx, tx, users); err != nil {
		return res, err
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// recordIDs records the items' event ids and returns those not recorded
// before.
func recordIDs(ctx context.Context, tx pgx.Tx, items []Item) (map[uuid.UUID]bool, error) {
	ids := make([]uuid.UUID, 0, len(items))
	for i := range items {
		ids = append(ids, items[i].ID)
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	pgIDs := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		pgIDs[i] = pgdb.UUID(id)
	}
	rows, err := tx.Query(ctx, insertProcessed, pgIDs)
	if err != nil {
		return nil, fmt.Errorf("record event ids: %w", err)
	}
	defer rows.Close()
	fresh := make(map[uuid.UUID]bool, len(ids))
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("record event ids: %w", err)
		}
		fresh[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record event ids: %w", err)
	}
	return fresh, nil
}

// sum adds up the deltas of the fresh items per user and keeps the newest
// state of each user, counting in res what is applied and what is a
// duplicate.
func sum(items []Item, fresh map[uuid.UUID]bool, res *ApplyResult) (map[int64]*Delta, map[int64]UserChange) {
	deltas := map[int64]*Delta{}
	users := map[int64]UserChange{}
	for i := range items {
		it := &items[i]
		if !fresh[it.ID] {
			res.Duplicates++
			continue
		}
		delete(fresh, it.ID) // a second copy in the same batch is a duplicate
		res.Applied++
		for _, d := range it.Deltas {
			if a := deltas[d.UserID]; a != nil {
				a.Total += d.Total
				a.Unread += d.Unread
			} else {
				dd := d
				deltas[d.UserID] = &dd
			}
		}
		if u := it.User; u != nil {
			if old, ok := users[u.ID]; !ok || u.LSN >= old.LSN {
				users[u.ID] = *u
			}
		}
	}
	return deltas, users
}

// addDeltas adds the deltas to the users' counters, one row update per user.
func addDeltas(ctx context.Context, tx pgx.Tx, deltas map[int64]*Delta) error {
	if len(deltas) == 0 {
		return nil
	}
	uids := sortedKeys(deltas)
	totals, unreads := make([]int64, len(uids)), make([]int64, len(uids))
	for i, u := range uids {
		totals[i], unreads[i] = deltas[u].Total, deltas[u].Unread
	}
	if _, err := tx.Exec(ctx, upsertCounters, uids, totals, unreads); err != nil {
		return fmt.Errorf("update counters of %d users: %w", len(uids), err)
	}
	return nil
}

// replicateUsers writes the users' newest states.
func replicateUsers(ctx context.Context, tx pgx.Tx, users map[int64]UserChange) error {
	if len(users) == 0 {
		return nil
	}
	uids := sortedKeys(users)
	names, deleted, lsns := make([]*string, len(uids)), make([]bool, len(uids)), make([]int64, len(uids))
	for i, id := range uids {
		u := users[id]
		names[i], deleted[i], lsns[i] = u.Name, u.Deleted, u.LSN
	}
	if _, err := tx.Exec(ctx, upsertUsers, uids, names, deleted, lsns); err != nil {
		return fmt.Errorf("replicate %d users: %w", len(uids), err)
	}
	return nil
}

func sortedKeys[V any](m map[int64]V) []int64 {
	ks := make([]int64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Counters is one user's counters.
type Counters struct {
	UserID int64 `json:"user_id"`
	Total  int64 `json:"total"`
	Unread int64 `json:"unread"`
}

// ErrUnknownUser is returned by Get for a user the counters never heard of.
var ErrUnknownUser = errors.New("unknown user")

// Get reads one user's counters. A user known from a users event or from a
// message has a counters row; any other id is ErrUnknownUser.
func (s *Store) Get(ctx context.Context, user int64) (Counters, error) {
	c := Counters{UserID: user}
	err := s.Pool.QueryRow(ctx, `SELECT total, unread FROM counters WHERE user_id = $1`, user).Scan(&c.Total, &c.Unread)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%w %d", ErrUnknownUser, user)
	}
	if err != nil {
		return c, fmt.Errorf("read counters of user %d: %w", user, err)
	}
	return c, nil
}

// Prune forgets event ids processed before now-retention. Keep retention
// longer than the topics' retention: an event replayed after its id was
// pruned is applied again.
func (s *Store) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM processed_events WHERE processed_at < now() - $1::interval`, retention)
	if err != nil {
		return 0, fmt.Errorf("prune processed events: %w", err)
	}
	return tag.RowsAffected(), nil
}
