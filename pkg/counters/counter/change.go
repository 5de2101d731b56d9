// Package counter keeps per-user message counters (total received,
// unread) in a counters database of its own, from the Debezium change
// events of the dialogs database's users and messages tables.
//
// Every change of a message contributes f(after) - f(before) to its
// recipient's counters, where f(row) = (total 1, unread 1 if not read). The
// contributions are commutative: applied in any order, each exactly once,
// they sum to the counts of the rows that exist now. So the function
// pre-aggregates the deltas of a whole batch per user (one UPDATE per user
// per batch) and applies them with the batch's event ids in one
// transaction; an event id already recorded contributes nothing.
package counter

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/counters/cdc/envelope"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Tables names the source tables, as "schema.table".
type Tables struct {
	Messages string
	Users    string
}

// DefaultTables are the dialogs database's tables.
var DefaultTables = Tables{Messages: "public.messages", Users: "public.users"}

// Delta is a change of one user's counters.
type Delta struct {
	UserID int64
	Total  int64
	Unread int64
}

// UserChange is the replicated state of a user after a change; the newest
// (highest LSN) wins, so users events may also arrive in any order.
type UserChange struct {
	ID      int64
	Name    *string
	Deleted bool
	LSN     int64
}

// Item is what one change event does to the counters database.
type Item struct {
	// ID identifies the change (see EventID); a second item with the same
	// ID changes nothing.
	ID     uuid.UUID
	Deltas []Delta
	User   *UserChange
}

// idNamespace makes event ids (UUIDv5).
var idNamespace = uuid.MustParse("6f1d3c1e-6b1a-4f4e-9a57-0c1f5d2b7e11")

// EventID derives the dedupe id of a change from the change itself, not
// from where it sits in Kafka: database, schema, table, the LSN of the
// change's WAL record, the primary key and the operation. The CDC source
// re-sends a change after a crash between the Kafka acknowledgement and the
// LSN confirmation at a new offset, and a real Debezium would send the
// same LSN and key, so such a copy has the same id. (One WAL record may
// hold several rows, e.g. COPY's multi-insert, hence the key.) fallback
// (the CloudEvent's source and id) is used only when the event has no LSN.
func EventID(env *envelope.Envelope, key string, fallback string) uuid.UUID {
	if env.Source.LSN == 0 {
		return uuid.NewSHA1(idNamespace, []byte("ce|"+fallback))
	}
	s := env.Source
	return uuid.NewSHA1(idNamespace, []byte(fmt.Sprintf("cdc|%s|%s|%s|%d|%s|%s", s.DB, s.Schema, s.Table, s.LSN, key, env.Op)))
}

// messageRow is what the counter reads of a messages row image.
type messageRow struct {
	ID          json.Number `json:"id"`
	RecipientID *int64      `json:"recipient_id"`
	Read        *bool       `json:"read"`
}

type userRow struct {
	ID   json.Number `json:"id"`
	Name *string     `json:"name"`
}

// contribution is f(row): what one message row adds to its recipient.
func contribution(r messageRow, sign int64) Delta {
	d := Delta{UserID: *r.RecipientID, Total: sign}
	if !*r.Read {
		d.Unread = sign
	}
	return d
}

func decodeMessage(raw json.RawMessage, which, op string) (messageRow, error) {
	var r messageRow
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fn.Invalidf("messages %s image: %v", which, err)
	}
	if r.RecipientID == nil || r.Read == nil {
		return r, fn.Invalidf("messages %s image of op %q lacks recipient_id or read: "+
			"the messages table needs REPLICA IDENTITY FULL so that updates and deletes carry the old row", which, op)
	}
	return r, nil
}

// FromEnvelope turns a change event into an Item. It returns nil for
// events the counters ignore (other tables, truncates). fallbackID is the
// CloudEvent's source and id, used only when the event has no LSN.
func FromEnvelope(env *envelope.Envelope, tables Tables, fallbackID string) (*Item, error) {
	table := env.Source.Schema + "." + env.Source.Table
	if env.Source.Schema == "" {
		table = "public." + env.Source.Table
	}
	switch table {
	case tables.Messages:
		return messageItem(env, fallbackID)
	case tables.Users:
		return userItem(env, fallbackID)
	default:
		return nil, nil
	}
}

func messageItem(env *envelope.Envelope, fallbackID string) (*Item, error) {
	if env.Op == envelope.OpTruncate {
		return nil, fn.Invalidf("messages was truncated: counters cannot follow a truncate; rebuild them")
	}
	var deltas []Delta
	var key json.Number
	if env.Op != envelope.OpCreate && env.Op != envelope.OpRead {
		// u and d: take away what the old row contributed.
		if !env.HasBefore() {
			return nil, fn.Invalidf("messages op %q has no before image: "+
				"the messages table needs REPLICA IDENTITY FULL", env.Op)
		}
		b, err := decodeMessage(env.Before, "before", env.Op)
		if err != nil {
			return nil, err
		}
		deltas = append(deltas, contribution(b, -1))
		key = b.ID
	}
	if env.HasAfter() {
		a, err := decodeMessage(env.After, "after", env.Op)
		if err != nil {
			return nil, err
		}
		deltas = append(deltas, contribution(a, +1))
		key = a.ID
	}
	if key == "" {
		return nil, fn.Invalidf("messages change has no id")
	}
	return &Item{ID: EventID(env, key.String(), fallbackID), Deltas: compact(deltas)}, nil
}

// compact merges the deltas of one user and drops zero ones (an update that
// changed neither recipient nor read flag contributes nothing, but is
// still recorded as processed).
func compact(ds []Delta) []Delta {
	if len(ds) == 2 && ds[0].UserID == ds[1].UserID {
		ds = []Delta{{UserID: ds[0].UserID, Total: ds[0].Total + ds[1].Total, Unread: ds[0].Unread + ds[1].Unread}}
	}
	out := ds[:0]
	for _, d := range ds {
		if d.Total != 0 || d.Unread != 0 {
			out = append(out, d)
		}
	}
	return out
}

func userItem(env *envelope.Envelope, fallbackID string) (*Item, error) {
	if env.Op == envelope.OpTruncate {
		return nil, nil
	}
	raw := env.After
	if env.Op == envelope.OpDelete {
		raw = env.Before
	}
	var u userRow
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fn.Invalidf("users row image: %v", err)
	}
	id, err := strconv.ParseInt(u.ID.String(), 10, 64)
	if err != nil {
		return nil, fn.Invalidf("users id %q: %v", u.ID, err)
	}
	uc := &UserChange{ID: id, Name: u.Name, Deleted: env.Op == envelope.OpDelete, LSN: env.Source.LSN}
	if env.Op == envelope.OpRead {
		// A snapshot's row is older than every change streamed from its
		// slot, even one whose WAL record comes before the slot's
		// consistent point (its transaction began first, committed after).
		uc.LSN = 0
	}
	it := &Item{ID: EventID(env, u.ID.String(), fallbackID), User: uc}
	if !uc.Deleted {
		// A zero delta makes sure a known user has a counters row.
		it.Deltas = []Delta{{UserID: id}}
	}
	return it, nil
}
