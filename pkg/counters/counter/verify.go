package counter

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Drift is a user whose counters differ from the source.
type Drift struct {
	UserID       int64
	Total        int64 // counters database
	Unread       int64
	SourceTotal  int64 // count(*) in the dialogs database
	SourceUnread int64
}

func (d Drift) String() string {
	return fmt.Sprintf("user %d: total %d (source %d, drift %+d), unread %d (source %d, drift %+d)",
		d.UserID, d.Total, d.SourceTotal, d.Total-d.SourceTotal, d.Unread, d.SourceUnread, d.Unread-d.SourceUnread)
}

// Report is the result of Compare.
type Report struct {
	Users         int     // users in the source
	Messages      int64   // messages in the source
	Drifts        []Drift // users whose counters differ
	NotReplicated []int64 // source users missing from the counters database's users
	NotInSource   []int64 // replicated users (not deleted) the source does not have
}

// OK reports whether there is no drift at all.
func (r Report) OK() bool {
	return len(r.Drifts) == 0 && len(r.NotReplicated) == 0 && len(r.NotInSource) == 0
}

// Print writes the report, at most limit drift lines (0: all).
func (r Report) Print(w io.Writer, limit int) {
	for i, d := range r.Drifts {
		if limit > 0 && i == limit {
			fmt.Fprintf(w, "... and %d more users with drift\n", len(r.Drifts)-limit)
			break
		}
		fmt.Fprintln(w, "drift:", d)
	}
	if n := len(r.NotReplicated); n > 0 {
		fmt.Fprintf(w, "drift: %d source users not replicated into the counters database, e.g. %v\n", n, r.NotReplicated[:min(n, 10)])
	}
	if n := len(r.NotInSource); n > 0 {
		fmt.Fprintf(w, "drift: %d replicated users not in the source, e.g. %v\n", n, r.NotInSource[:min(n, 10)])
	}
	status := "no drift"
	if !r.OK() {
		status = fmt.Sprintf("DRIFT in %d users", len(r.Drifts)+len(r.NotReplicated)+len(r.NotInSource))
	}
	fmt.Fprintf(w, "counters: %d users, %d messages in the source: %s\n", r.Users, r.Messages, status)
}

type pair struct{ total, unread int64 }

// Compare reads every user's message counts from the dialogs database
// (count(*) of the messages they received, and of those not read) and
// their counters from the counters database, and reports the differences.
// The two reads are not one snapshot: run it on a quiet pipeline (or
// retry) to tell drift from lag.
func Compare(ctx context.Context, dialogsDB, countersDB *pgxpool.Pool) (Report, error) {
	var rep Report
	var id int64
	var p pair
	sourceUsers := map[int64]bool{}
	if err := forEachRow(ctx, dialogsDB, "read source users", `SELECT id FROM users`,
		[]any{&id}, func() { sourceUsers[id] = true }); err != nil {
		return rep, err
	}
	source := map[int64]pair{}
	if err := forEachRow(ctx, dialogsDB, "count source messages",
		`SELECT recipient_id, count(*), count(*) FILTER (WHERE NOT read) FROM messages GROUP BY recipient_id`,
		[]any{&id, &p.total, &p.unread}, func() { source[id] = p; rep.Messages += p.total }); err != nil {
		return rep, err
	}
	counted := map[int64]pair{}
	if err := forEachRow(ctx, countersDB, "read counters", `SELECT user_id, total, unread FROM counters`,
		[]any{&id, &p.total, &p.unread}, func() { counted[id] = p }); err != nil {
		return rep, err
	}
	replicated := map[int64]bool{}
	if err := forEachRow(ctx, countersDB, "read replicated users", `SELECT id FROM users WHERE NOT deleted`,
		[]any{&id}, func() { replicated[id] = true }); err != nil {
		return rep, err
	}

	rep.Users = len(sourceUsers)
	all := map[int64]bool{}
	for id := range sourceUsers {
		all[id] = true
		if !replicated[id] {
			rep.NotReplicated = append(rep.NotReplicated, id)
		}
	}
	for id := range replicated {
		if !sourceUsers[id] {
			rep.NotInSource = append(rep.NotInSource, id)
		}
	}
	for id := range source {
		all[id] = true
	}
	for id := range counted {
		all[id] = true
	}
	for id := range all {
		s, c := source[id], counted[id]
		if s != c {
			rep.Drifts = append(rep.Drifts, Drift{UserID: id, Total: c.total, Unread: c.unread, SourceTotal: s.total, SourceUnread: s.unread})
		}
	}
	slices.SortFunc(rep.Drifts, func(a, b Drift) int { return cmpInt(a.UserID, b.UserID) })
	slices.Sort(rep.NotReplicated)
	slices.Sort(rep.NotInSource)
	return rep, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// forEachRow runs query on db and calls fn after each row is scanned into
// dest; errors name what was being read.
func forEachRow(ctx context.Context, db *pgxpool.Pool, what, query string, dest []any, fn func()) error {
	rows, err := db.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := pgx.ForEachRow(rows, dest, func() error { fn(); return nil }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
