package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/replay"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// ReplayRequest is the body of POST /replay on the admin port: the
// KafkaSource or Trigger by name, and one position.
type ReplayRequest struct {
	Name string `json:"name"`
	replay.Position
}

// ReplayAnswer says what moved.
type ReplayAnswer struct {
	Name  string        `json:"name"`
	Group string        `json:"group"`
	To    string        `json:"to"`
	Moves []replay.Move `json:"moves"`
}

// pauseTimeout bounds how long a source may take to leave its group.
const pauseTimeout = 60 * time.Second

// serveReplay pauses the named source or trigger (it commits what finished
// and leaves its group), moves the group's offsets, and resumes it: the
// records from there are delivered again with the source's delivery rules.
func (e *Engine) serveReplay(w http.ResponseWriter, r *http.Request) {
	var q ReplayRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		fn.WriteError(w, fn.Invalidf("replay request: %v", err))
		return
	}
	if err := q.Position.Validate(); err != nil {
		fn.WriteError(w, fn.Invalid(err))
		return
	}
	src := e.sourceNamed(q.Name)
	if src == nil {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, fmt.Errorf("no KafkaSource or Trigger named %q runs here", q.Name)))
		return
	}
	ctx := r.Context()
	pauseCtx, cancel := context.WithTimeout(ctx, pauseTimeout)
	defer cancel()
	resume, err := src.Pause(pauseCtx)
	if err != nil {
		fn.WriteError(w, fn.Unavailable(fmt.Errorf("pause %s: %w", q.Name, err)))
		return
	}
	defer resume()
	g := replay.Group{ID: src.Group(), Topics: src.Topics()}
	moves, err := replay.Reset(ctx, src.Brokers(), g, q.Position)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, replay.ErrGroupActive) {
			code = http.StatusConflict // another consumer (another engine?) is in the group
		}
		fn.WriteError(w, fn.WithStatus(code, err))
		return
	}
	e.log.Warn("replay", "name", q.Name, "group", g.ID, "to", q.Position.String(), "moves", moves)
	fn.WriteJSON(w, http.StatusOK, ReplayAnswer{Name: q.Name, Group: g.ID, To: q.Position.String(), Moves: moves})
}

// sourceNamed is the running KafkaSource or Trigger dispatcher named name.
func (e *Engine) sourceNamed(name string) *kafkasource.Source {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range append(append([]*kafkasource.Source(nil), e.sources...), e.triggers...) {
		if s.Name() == name {
			return s
		}
	}
	return nil
}
