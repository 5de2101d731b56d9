// Package pgdb opens a PostgreSQL pool and creates a schema in it, the
// same way for every store.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is a PostgreSQL database with its schema: what each store is built
// on (a store embeds *DB and adds its queries).
type DB struct {
	Pool   *pgxpool.Pool
	name   string // which database, in errors ("jobs database")
	schema string
}

// Open connects to url and applies schema; name says which database in
// errors ("jobs database").
func Open(ctx context.Context, name, url, schema string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s url: %w", name, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	db := &DB{Pool: pool, name: name, schema: schema}
	if err := db.EnsureSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// EnsureSchema applies the schema again (it is idempotent).
func (db *DB) EnsureSchema(ctx context.Context) error { return Apply(ctx, db.Pool, db.name, db.schema) }

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Lifecycle is func's Stop and Ready for a function over one database:
// embed it and set DB when the function has started.
type Lifecycle struct{ DB *DB }

// Stop closes the database.
func (l *Lifecycle) Stop(context.Context) error {
	if l.DB != nil {
		l.DB.Close()
	}
	return nil
}

// Ready is the readiness probe: started and the database answers.
func (l *Lifecycle) Ready(ctx context.Context) (bool, error) {
	if l.DB == nil {
		return false, errors.New("not started")
	}
	if err := l.DB.Pool.Ping(ctx); err != nil {
		return false, fmt.Errorf("%s: %w", l.DB.name, err)
	}
	return true, nil
}

// Apply runs schema in one transaction. Schemas are idempotent (IF NOT
// EXISTS) and take an advisory lock first, so concurrent starts are safe.
func Apply(ctx context.Context, pool *pgxpool.Pool, name, schema string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s schema: %w", name, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("%s schema: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s schema: %w", name, err)
	}
	return nil
}

// WithDatabase returns a PostgreSQL URL with its database replaced by db.
func WithDatabase(url, db string) string {
	q := ""
	if i := strings.Index(url, "?"); i >= 0 {
		url, q = url[:i], url[i:]
	}
	if i := strings.LastIndex(url, "/"); i > strings.Index(url, "://")+2 {
		url = url[:i]
	}
	return url + "/" + db + q
}

// UUID is id as pgx encodes it in binary as it is. A uuid.UUID is a
// driver.Valuer, which pgx first tries and fails to encode in binary (an
// error built per value) and then sends as text: a fifth of pgsink's CPU
// when it was passed in uuid[] parameters.
func UUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }
