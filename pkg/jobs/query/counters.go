package query

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/jobflow/jobflow/pkg/counters/counter"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// CountersConfig is read when GET /counters/<user> is first asked.
type CountersConfig struct {
	CountersURL string `envconfig:"JOBFLOW_COUNTERS_URL" required:"true" desc:"PostgreSQL URL of the counters database"`
}

// countersRoute answers GET /counters/{user} with
// {"user_id":..,"total":..,"unread":..}: 404 for a user the counters never
// heard of (no users event and no message yet), 400 for an id that is not a
// positive integer. It connects on first use, so the query function still
// starts (and serves jobs) when the counters database is not configured.
type countersRoute struct {
	mu    sync.Mutex
	store *counter.Store
}

func newCountersRoute() *countersRoute { return &countersRoute{} }

func (c *countersRoute) open(ctx context.Context) (*counter.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store != nil {
		return c.store, nil
	}
	var cfg CountersConfig
	if err := fn.Process("", &cfg); err != nil {
		return nil, err
	}
	s, err := counter.Open(ctx, cfg.CountersURL)
	if err != nil {
		return nil, err
	}
	c.store = s
	return s, nil
}

func (c *countersRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimSpace(r.PathValue("user"))
	user, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || user <= 0 {
		fn.WriteError(w, fn.Invalidf("user id %q is not a positive integer", raw))
		return
	}
	s, err := c.open(r.Context())
	if err != nil {
		fn.WriteError(w, fn.Unavailable(fmt.Errorf("counters database: %w", err)))
		return
	}
	got, err := s.Get(r.Context(), user)
	if errors.Is(err, counter.ErrUnknownUser) {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, err))
		return
	}
	if err != nil {
		fn.WriteError(w, fn.Unavailable(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, got)
}
