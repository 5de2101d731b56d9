package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Counters is the message counters' load and accounting: users and
// messages written through the dialogs API, messages marked read one by
// one and whole dialogs at a time.
type Counters struct {
	Dialogs                                     string // http://127.0.0.1:<port>
	c                                           *client
	mu                                          sync.Mutex
	users                                       []int64
	msgs                                        map[int64]bool // accepted message -> accepted as read
	unread                                      []int64        // accepted messages not marked read yet
	posts, reads, dialogReads, refused, retried int
	refusals                                    *refusals
}

// NewCounters is the counters load on the dialogs function.
func NewCounters(dialogs string, giveUp time.Duration) *Counters {
	return &Counters{Dialogs: dialogs, c: newClient(giveUp), msgs: map[int64]bool{}}
}

// CreateUser creates a user; 0 if refused.
func (c *Counters) CreateUser(ctx context.Context, name string) int64 {
	o := c.c.do(ctx, "POST", c.Dialogs+"/users", mustJSON(map[string]string{"name": name}), nil, is2xx)
	var u struct {
		ID int64 `json:"id"`
	}
	if o.status != 201 || json.Unmarshal(o.body, &u) != nil {
		return 0
	}
	return u.ID
}

// Setup creates n users for the load.
func (c *Counters) Setup(ctx context.Context, n int) error {
	for i := range n {
		id := c.CreateUser(ctx, fmt.Sprintf("chaos-%d", i))
		if id == 0 {
			return fmt.Errorf("dialogs: user %d not created", i)
		}
		c.users = append(c.users, id)
	}
	return nil
}

// Post sends a message from one user to another; its id, 0 if refused.
func (c *Counters) Post(ctx context.Context, from, to int64) int64 {
	o := c.c.do(ctx, "POST", c.Dialogs+"/messages", mustJSON(map[string]any{"sender_id": from, "recipient_id": to, "body": "chaos"}), nil, is2xx)
	var m struct {
		ID int64 `json:"id"`
	}
	ok := o.status == 201 && json.Unmarshal(o.body, &m) == nil && m.ID > 0
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("message", o, ok)
	if ok {
		c.posts++
		c.msgs[m.ID] = false
		c.unread = append(c.unread, m.ID)
		return m.ID
	}
	return 0
}

func (c *Counters) count(what string, o outcome, ok bool) {
	if o.attempts > 1 {
		c.retried++
	}
	if !ok {
		c.refused++
		c.refusals.add(what, o)
	}
}

// Step is one request of the steady load: mostly new messages, some
// marked read, now and then a whole dialog read.
func (c *Counters) Step(ctx context.Context, rng *rand.Rand) {
	c.mu.Lock()
	from, to := c.users[rng.IntN(len(c.users))], c.users[rng.IntN(len(c.users))]
	var read int64
	if p := rng.IntN(100); p < 30 && len(c.unread) > 0 {
		i := rng.IntN(len(c.unread))
		read = c.unread[i]
		c.unread[i] = c.unread[len(c.unread)-1]
		c.unread = c.unread[:len(c.unread)-1]
	} else if p >= 95 && from != to {
		c.mu.Unlock()
		o := c.c.do(ctx, "POST", c.Dialogs+"/dialogs/read", mustJSON(map[string]int64{"user_id": to, "peer_id": from}), nil, is2xx)
		c.mu.Lock()
		c.count("dialog read", o, o.status == 200)
		if o.status == 200 {
			c.dialogReads++
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if read == 0 {
		for to == from {
			to = c.users[rng.IntN(len(c.users))]
		}
		c.Post(ctx, from, to)
		return
	}
	// Marking read is idempotent: safe to resend.
	o := c.c.do(ctx, "POST", fmt.Sprintf("%s/messages/%d/read", c.Dialogs, read), nil, nil, is2xx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("read", o, o.status == 200)
	if o.status == 200 {
		c.reads++
		c.msgs[read] = true
	}
}

// CounterTally is the counters' accounting.
type CounterTally struct {
	Posts, Reads, DialogReads, Refused, Retried int
	LostMessages, LostReads                     int // accepted, not in the dialogs database
	Users                                       int // users compared
	Lost, Doubled                               int // counts below / above the dialogs truth, summed over users
	Examples                                    []string
}

// Tally checks every accepted message and read in the dialogs database,
// and every user's counters against the dialogs truth.
func (c *Counters) Tally(ctx context.Context, dialogs, counters *pgxpool.Pool) (CounterTally, error) {
	c.mu.Lock()
	t := CounterTally{Posts: c.posts, Reads: c.reads, DialogReads: c.dialogReads, Refused: c.refused, Retried: c.retried}
	want := make(map[int64]bool, len(c.msgs))
	for id, r := range c.msgs {
		want[id] = r
	}
	c.mu.Unlock()
	read := map[int64]bool{}
	rows, err := dialogs.Query(ctx, `SELECT id, read FROM messages`)
	if err != nil {
		return t, fmt.Errorf("messages: %w", err)
	}
	for rows.Next() {
		var id int64
		var r bool
		if err := rows.Scan(&id, &r); err != nil {
			return t, fmt.Errorf("messages: %w", err)
		}
		read[id] = r
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("messages: %w", err)
	}
	for id, r := range want {
		got, ok := read[id]
		switch {
		case !ok:
			t.LostMessages++
			t.example(fmt.Sprintf("message %d: accepted, not in dialogs", id))
		case r && !got:
			t.LostReads++
			t.example(fmt.Sprintf("message %d: marked read, unread in dialogs", id))
		}
	}
	return t, c.compare(ctx, dialogs, counters, &t)
}

// compare adds each user's counters' difference from the dialogs truth.
func (c *Counters) compare(ctx context.Context, dialogs, counters *pgxpool.Pool, t *CounterTally) error {
	truth, err := pairs(ctx, dialogs, `SELECT recipient_id, count(*), count(*) FILTER (WHERE NOT read) FROM messages GROUP BY recipient_id`)
	if err != nil {
		return fmt.Errorf("dialogs truth: %w", err)
	}
	got, err := pairs(ctx, counters, `SELECT user_id, total, unread FROM counters`)
	if err != nil {
		return fmt.Errorf("counters: %w", err)
	}
	for u := range got {
		if _, ok := truth[u]; !ok {
			truth[u] = [2]int64{}
		}
	}
	t.Users = len(truth)
	for u, w := range truth {
		g := got[u]
		for k := range 2 {
			switch d := g[k] - w[k]; {
			case d < 0:
				t.Lost += int(-d)
			case d > 0:
				t.Doubled += int(d)
			}
		}
		if g != w {
			t.example(fmt.Sprintf("user %d: counters total/unread %d/%d, dialogs %d/%d", u, g[0], g[1], w[0], w[1]))
		}
	}
	return nil
}

func pairs(ctx context.Context, db *pgxpool.Pool, q string) (map[int64][2]int64, error) {
	m := map[int64][2]int64{}
	rows, err := db.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var u, a, b int64
		if err := rows.Scan(&u, &a, &b); err != nil {
			return nil, err
		}
		m[u] = [2]int64{a, b}
	}
	return m, rows.Err()
}

func (t *CounterTally) example(s string) {
	if len(t.Examples) < 5 {
		t.Examples = append(t.Examples, s)
	}
}

// UserSettled reports whether user's counters equal the dialogs truth.
func UserSettled(ctx context.Context, dialogs, counters *pgxpool.Pool, user int64) bool {
	var total, unread, wt, wu int64
	if dialogs.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE NOT read) FROM messages WHERE recipient_id = $1`, user).Scan(&wt, &wu) != nil {
		return false
	}
	if counters.QueryRow(ctx, `SELECT total, unread FROM counters WHERE user_id = $1`, user).Scan(&total, &unread) != nil {
		return false
	}
	return total == wt && unread == wu
}
