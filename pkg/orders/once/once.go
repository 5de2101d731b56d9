// Package once gives the orders domain's services exactly-once effects: a
// service handles a CloudEvent in one PostgreSQL transaction that both
// applies its effect and records the event's source + id in its own
// processed_events table, with the events it answered. A redelivery, a
// replay of the topic or a duplicate sent by anyone changes nothing and is
// answered with the same events as the first time.
//
// Concurrent events share their transaction (group commit, see
// Committer): each runs under its own savepoint, so its failure is its
// own, and one COMMIT (one fsync) makes the whole group durable.
package once

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Schema creates the processed_events table; a service adds it to its own
// schema (it is idempotent).
const Schema = `
CREATE TABLE IF NOT EXISTS processed_events (
	source       text NOT NULL,
	id           text NOT NULL,
	type         text NOT NULL,
	replies      bytea, -- the answer: a JSON array of CloudEvents, byte for byte
	processed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (source, id)
);
CREATE INDEX IF NOT EXISTS processed_events_at ON processed_events USING brin (processed_at);`

// Effect applies an event's effect inside tx and returns the events it
// answers with (none is fine). An error rolls back what the effect did and
// the record of the event (its savepoint), so the event can be delivered
// again; the other events of its group commit are not touched. It must not
// commit or roll back tx itself, and ctx is the group's, not the caller's.
type Effect func(ctx context.Context, tx pgx.Tx) ([]event.Event, error)

// Result of Committer.Do.
type Result struct {
	Replies   []event.Event // the answer: this time's, or the first time's for a duplicate
	Duplicate bool          // the event had been handled before; the effect did not run
}

// apply handles in exactly once inside tx, under its own savepoint
// (SavepointName), which it opens and, on success, releases; on an error
// the caller rolls back to it. It records (source, id) of in, runs effect
// and stores its replies. When in was handled before, effect does not run
// and the stored replies are returned. Two deliveries of one event at the
// same time are serialised by the primary key: the second waits for the
// first's transaction to end, then sees its row (at once when both are in
// one transaction). Its own statements take two round trips: the
// savepoint with the record, the replies with the release.
func apply(ctx context.Context, tx pgx.Tx, in event.Event, effect Effect) (Result, error) {
	open := &pgx.Batch{}
	open.Queue(`SAVEPOINT ` + SavepointName)
	var recorded bool
	open.Queue(`INSERT INTO processed_events (source, id, type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		in.Source(), in.ID(), in.Type()).Exec(func(tag pgconn.CommandTag) error {
		recorded = tag.RowsAffected() == 1
		return nil
	})
	if err := tx.SendBatch(ctx, open).Close(); err != nil {
		return Result{}, fmt.Errorf("record event %s/%s: %w", in.Source(), in.ID(), err)
	}
	if !recorded {
		replies, err := stored(ctx, tx, in)
		if err != nil {
			return Result{}, err
		}
		return Result{Replies: replies, Duplicate: true}, release(ctx, tx, &pgx.Batch{})
	}
	replies, err := effect(ctx, tx)
	if err != nil {
		return Result{}, err
	}
	end := &pgx.Batch{}
	if len(replies) > 0 {
		raw, err := json.Marshal(replies)
		if err != nil {
			return Result{}, fmt.Errorf("encode replies: %w", err)
		}
		end.Queue(`UPDATE processed_events SET replies = $3 WHERE source = $1 AND id = $2`, in.Source(), in.ID(), raw)
	}
	if err := release(ctx, tx, end); err != nil {
		return Result{}, fmt.Errorf("store replies of %s/%s: %w", in.Source(), in.ID(), err)
	}
	return Result{Replies: replies}, nil
}

// SavepointName is the savepoint of each event in a group.
const SavepointName = "once_event"

// release sends b and then releases the event's savepoint, in one round trip.
func release(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	b.Queue(`RELEASE SAVEPOINT ` + SavepointName)
	return tx.SendBatch(ctx, b).Close()
}

// rollback undoes the event's savepoint (and drops it), in one round trip.
func rollback(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	b.Queue(`ROLLBACK TO SAVEPOINT ` + SavepointName)
	b.Queue(`RELEASE SAVEPOINT ` + SavepointName)
	return tx.SendBatch(ctx, b).Close()
}

func stored(ctx context.Context, tx pgx.Tx, in event.Event) ([]event.Event, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT replies FROM processed_events WHERE source = $1 AND id = $2`, in.Source(), in.ID()).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("event %s/%s recorded but not found", in.Source(), in.ID())
	}
	if err != nil || raw == nil {
		return nil, err
	}
	var replies []event.Event
	if err := json.Unmarshal(raw, &replies); err != nil {
		return nil, fmt.Errorf("decode stored replies of %s/%s: %w", in.Source(), in.ID(), err)
	}
	return replies, nil
}
