package console

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

const (
	browseDefault = 50
	browseMax     = 500
	// lookupDepth records of each partition are searched by a lookup.
	lookupDepth = 20000
	// deadLetterDepth records of each dead-letter partition are listed.
	deadLetterDepth = 1000
	readTimeout     = 5 * time.Second
)

// topicNames are the plan's topics, sorted.
func (c *Console) topicNames() []string {
	var ns []string
	for _, t := range c.cfg.Plan.Topics {
		ns = append(ns, t.Name)
	}
	sort.Strings(ns)
	return ns
}

// topics: GET /api/console/topics → [{name, partitions, records}].
func (c *Console) topics(w http.ResponseWriter, r *http.Request) {
	var out []TopicInfo
	for _, n := range c.topicNames() {
		ti, err := c.kafka.info(n)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		out = append(out, ti)
	}
	writeJSON(w, http.StatusOK, out)
}

// topic: GET /api/console/topics/{topic}?limit=N → the newest N records
// (per partition read, newest first overall).
func (c *Console) topic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if !slices.Contains(c.topicNames(), name) {
		fail(w, http.StatusNotFound, "no topic "+strconv.Quote(name)+" in the plan")
		return
	}
	limit := browseDefault
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > browseMax {
			fail(w, http.StatusBadRequest, "limit "+strconv.Quote(v)+": want 1 to "+strconv.Itoa(browseMax))
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	ms, err := c.kafka.tail(ctx, name, int64(limit), nil)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"topic": name, "records": decodeAll(ctx, ms, limit)})
}

// lookup: GET /api/console/lookup?id=X → every record of the plan's
// topics (the latest lookupDepth of each partition) that names X as its
// key, in a header (id, subject, partitionkey) or in its data, oldest
// first: where a job or an order has been, and the last place it reached.
func (c *Console) lookup(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if reason := badLookupID(id); reason != "" {
		fail(w, http.StatusBadRequest, reason)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*readTimeout)
	defer cancel()
	var found []*sarama.ConsumerMessage
	for _, t := range c.topicNames() {
		ms, err := c.kafka.tail(ctx, t, lookupDepth, func(m *sarama.ConsumerMessage) bool { return mentions(m, []byte(id)) })
		if err != nil {
			fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		found = append(found, ms...)
	}
	slices.Reverse(found) // oldest first
	sort.SliceStable(found, func(i, j int) bool { return found[i].Timestamp.Before(found[j].Timestamp) })
	recs := decodeAll(ctx, found, 200)
	answer := map[string]any{"id": id, "records": recs, "searched_per_partition": lookupDepth}
	if len(recs) > 0 {
		answer["last_topic"] = recs[len(recs)-1].Topic
	}
	writeJSON(w, http.StatusOK, answer)
}

// badLookupID is why id cannot be looked up, or "".
func badLookupID(id string) string {
	if len(id) < 3 || len(id) > 200 {
		return "id: want 3 to 200 characters"
	}
	return ""
}

// DestinationCount is how many dead letters one destination has.
type DestinationCount struct {
	Destination string    `json:"destination"`
	Count       int       `json:"count"`
	Latest      time.Time `json:"latest"`
}

// deadLetters: GET /api/console/dead-letters → the dead letters of the
// plan's dead-letter topics, counted per destination, newest first.
func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	var ms []*sarama.ConsumerMessage
	for _, t := range c.graph.DeadLetterTopics {
		got, err := c.kafka.tail(ctx, t, deadLetterDepth, nil)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		ms = append(ms, got...)
	}
	recs := decodeAll(ctx, ms, len(ms))
	counts := map[string]*DestinationCount{}
	for _, rec := range recs {
		dest := "(unknown)"
		if rec.DeadLetter != nil {
			dest = rec.DeadLetter.Destination
		}
		dc := counts[dest]
		if dc == nil {
			dc = &DestinationCount{Destination: dest}
			counts[dest] = dc
		}
		dc.Count++
		if rec.Time.After(dc.Latest) {
			dc.Latest = rec.Time
		}
	}
	var dests []DestinationCount
	for _, k := range sortedKeys(counts) {
		dests = append(dests, *counts[k])
	}
	if len(recs) > browseMax {
		recs = recs[:browseMax]
	}
	writeJSON(w, http.StatusOK, map[string]any{"topics": c.graph.DeadLetterTopics, "destinations": dests, "records": recs,
		"redrive": c.cfg.Redrive != nil})
}

// RecordID names one record.
type RecordID struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Redriver sends dead letters back to their destinations with the normal
// delivery rules; one that fails again is dead-lettered again.
type Redriver func(ctx context.Context, ids []RecordID) (RedriveResult, error)

// RedriveResult counts what a redrive did.
type RedriveResult struct {
	Delivered    int `json:"delivered"`
	DeadLettered int `json:"dead_lettered"` // failed again: back in the dead-letter topic
	Aborted      int `json:"aborted"`       // no outcome in time: left where they were
	Results      any `json:"results"`       // each letter's (internal/dlq.Result)
}

// redrive: POST /api/console/dead-letters/redrive {"records":[{topic,
// partition, offset}]}.
func (c *Console) redrive(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Redrive == nil {
		fail(w, http.StatusNotImplemented, "this engine has no redrive")
		return
	}
	var req struct {
		Records []RecordID `json:"records"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(req.Records) == 0 {
		fail(w, http.StatusBadRequest, "records: none given")
		return
	}
	for _, id := range req.Records {
		if !slices.Contains(c.graph.DeadLetterTopics, id.Topic) {
			fail(w, http.StatusBadRequest, "topic "+strconv.Quote(id.Topic)+" is not a dead-letter topic of the plan")
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	res, err := c.cfg.Redrive(ctx, req.Records)
	if err != nil {
		fail(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func decodeAll(ctx context.Context, ms []*sarama.ConsumerMessage, limit int) []Record {
	out := []Record{}
	for _, m := range ms {
		if len(out) == limit {
			break
		}
		out = append(out, decode(context.WithoutCancel(ctx), m))
	}
	return out
}
