package viewdiff

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schemas are the PostgreSQL schemas of a rebuild: where the live tables
// are, the fresh one the rebuild fills (FreshURL has it as search_path, so
// a store opened on it creates its tables there) and the one a swap moves
// the live tables to.
type Schemas struct {
	Live, Fresh, Replaced string
	FreshURL              string
}

// Prepare finds the live schema (that of pool, opened on url) and makes
// the fresh schema anew, empty.
func Prepare(ctx context.Context, pool *pgxpool.Pool, url, fresh, replaced string) (Schemas, error) {
	s := Schemas{Fresh: fresh, Replaced: replaced}
	var err error
	if s.FreshURL, err = WithSearchPath(url, fresh); err != nil {
		return s, err
	}
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&s.Live); err != nil {
		return s, fmt.Errorf("live schema: %w", err)
	}
	q := pgx.Identifier{fresh}.Sanitize()
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+q+" CASCADE; CREATE SCHEMA "+q); err != nil {
		return s, fmt.Errorf("fresh schema %s: %w", fresh, err)
	}
	return s, nil
}

// Table is table's quoted name in schema.
func Table(schema, table string) string { return pgx.Identifier{schema, table}.Sanitize() }

// Compare compares table in the live and the fresh schema row by row: key
// is its key column, cols the compared columns (comma-separated); keys are
// reported as prefix followed by the key.
func (s Schemas) Compare(ctx context.Context, pool *pgxpool.Pool, table, key, cols, prefix string) (Diff, error) {
	var d Diff
	l, f := Table(s.Live, table), Table(s.Fresh, table)
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+l+"), (SELECT count(*) FROM "+f+")").Scan(&d.Live, &d.Rebuilt); err != nil {
		return d, fmt.Errorf("count %s: %w", table, err)
	}
	rows, err := pool.Query(ctx, fmt.Sprintf(`
		SELECT coalesce(l.%[1]s, r.%[1]s)::text, l.%[1]s IS NULL, r.%[1]s IS NULL
		FROM %[2]s l FULL JOIN %[3]s r ON l.%[1]s = r.%[1]s
		WHERE l.%[1]s IS NULL OR r.%[1]s IS NULL OR ROW(%[4]s) IS DISTINCT FROM ROW(%[5]s)
		ORDER BY 1`, key, l, f, prefixed("l.", cols), prefixed("r.", cols)))
	if err != nil {
		return d, fmt.Errorf("compare %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var noLive, noFresh bool
		if err := rows.Scan(&k, &noLive, &noFresh); err != nil {
			return d, fmt.Errorf("compare %s: %w", table, err)
		}
		switch {
		case noLive:
			d.Missing = append(d.Missing, prefix+k)
		case noFresh:
			d.Extra = append(d.Extra, prefix+k)
		default:
			d.Differ = append(d.Differ, prefix+k)
		}
	}
	return d, rows.Err()
}

// Swap moves tables from the live schema to the replaced one (dropping
// what an earlier swap left there) and from the fresh schema to the live
// one, in one transaction.
func (s Schemas) Swap(ctx context.Context, pool *pgxpool.Pool, tables ...string) error {
	replaced := pgx.Identifier{s.Replaced}.Sanitize()
	q := "CREATE SCHEMA IF NOT EXISTS " + replaced
	for _, t := range tables {
		q += "; DROP TABLE IF EXISTS " + Table(s.Replaced, t) +
			"; ALTER TABLE " + Table(s.Live, t) + " SET SCHEMA " + replaced +
			"; ALTER TABLE " + Table(s.Fresh, t) + " SET SCHEMA " + pgx.Identifier{s.Live}.Sanitize()
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, q); return err }); err != nil {
		return fmt.Errorf("swap %s: %w", strings.Join(tables, ", "), err)
	}
	return nil
}

// Add adds o's rows and keys to d (a view of several tables).
func (d *Diff) Add(o Diff) {
	d.Live, d.Rebuilt = d.Live+o.Live, d.Rebuilt+o.Rebuilt
	d.Missing, d.Extra, d.Differ = append(d.Missing, o.Missing...), append(d.Extra, o.Extra...), append(d.Differ, o.Differ...)
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
