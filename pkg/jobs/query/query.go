// Package query is the query function: job status by id and analytics.
package query

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/eventstore"
	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/jobstore"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of query.
type Config struct {
	PostgresURL    string `envconfig:"JOBFLOW_POSTGRES_URL" required:"true" desc:"PostgreSQL URL of the jobs database"`
	ClickHouseAddr string `envconfig:"JOBFLOW_CLICKHOUSE_ADDR" required:"true" desc:"host:port of ClickHouse's native protocol"`
	ClickHouseDB   string `envconfig:"JOBFLOW_CLICKHOUSE_DB" default:"default" desc:"ClickHouse database"`
	// Lookup: QUERY_LOOKUP_BATCH_MAX_ITEMS, _FLUSHERS, _TIMEOUT (the reads of GET /info coalesced).
	Lookup batch.Env `envconfig:"QUERY_LOOKUP"`
}

// Function answers GET /info/<id> and GET /stats.
type Function struct {
	jobs        *jobstore.Store
	events      *eventstore.Store
	lookups     *batch.Batcher[*lookup]
	stopLookups func()
	mux         *http.ServeMux
}

// NewFunction returns an unstarted query function.
func NewFunction() *Function {
	f := &Function{mux: http.NewServeMux()}
	f.mux.HandleFunc("GET /info/{id}", f.info)
	f.mux.HandleFunc("GET /stats", f.stats)
	f.mux.Handle("GET /counters/{user}", newCountersRoute())
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, errors.New("no such endpoint: GET /info/<job id> or GET /stats")))
	})
	return f
}

// Start connects to both databases.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	var cfg Config
	if err := fn.Process("", &cfg); err != nil {
		return err
	}
	jobs, err := jobstore.Open(ctx, cfg.PostgresURL)
	if err != nil {
		return err
	}
	events, err := eventstore.Open(ctx, cfg.ClickHouseAddr, cfg.ClickHouseDB)
	if err != nil {
		jobs.Close()
		return err
	}
	f.jobs, f.events = jobs, events
	f.lookups = newLookups(cfg.Lookup.Config(lookupDefaults), jobs)
	f.stopLookups = f.lookups.Start()
	return nil
}

// Stop closes the connections.
func (f *Function) Stop(context.Context) error {
	if f.stopLookups != nil {
		f.stopLookups()
	}
	if f.jobs != nil {
		f.jobs.Close()
	}
	if f.events != nil {
		return f.events.Close()
	}
	return nil
}

// Ready is the readiness probe.
func (f *Function) Ready(context.Context) (bool, error) { return f.jobs != nil, nil }

// Handle routes a request.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// Info is the answer of /info/<id>.
type Info struct {
	ID         string     `json:"id"`
	Status     job.Status `json:"status"`
	CreateDate *time.Time `json:"create_date,omitempty"`
	FinishDate *time.Time `json:"finish_date,omitempty"`
	Sleep      *int64     `json:"sleep,omitempty"`
	DataSize   *int64     `json:"data_size,omitempty"`
	Checksum   string     `json:"checksum,omitempty"`
	Error      string     `json:"error,omitempty"`
}

func (f *Function) info(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimSpace(r.PathValue("id"))
	id, err := uuid.Parse(raw)
	if err != nil {
		fn.WriteError(w, fn.Invalidf("job id %q is not a UUID: %v", raw, err))
		return
	}
	l := &lookup{id: id}
	if err := f.lookups.Add(r.Context(), l); err != nil {
		fn.WriteError(w, fn.Unavailable(fmt.Errorf("get job %s: %w", id, err)))
		return
	}
	if !l.found {
		fn.WriteJSON(w, http.StatusOK, Info{ID: id.String(), Status: job.StatusUnknown})
		return
	}
	j := l.job
	fn.WriteJSON(w, http.StatusOK, Info{ID: j.ID.String(), Status: j.Status, CreateDate: &j.CreateDate,
		FinishDate: j.FinishDate, Sleep: &j.Sleep, DataSize: &j.DataSize, Checksum: j.Checksum, Error: j.Error})
}

func (f *Function) stats(w http.ResponseWriter, r *http.Request) {
	st, err := f.events.Stats(r.Context())
	if err != nil {
		fn.WriteError(w, fn.Unavailable(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, st)
}
