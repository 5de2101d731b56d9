package envelope

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// CloudEventsOp is the extension that marks a change event written by
// Debezium's CloudEvents converter (io.debezium.converters.CloudEventsConverter):
// the source block and the op are extensions named iodebezium<field>, and the
// data holds only {"before":..,"after":..} (or that wrapped as
// {"schema":..,"payload":..} when the data schema is enabled).
const CloudEventsOp = "iodebeziumop"

// FromCloudEvent rebuilds the envelope of a change event in the CloudEvents
// converter's form from its extensions (names compared without case, as
// CloudEvents lowercases them: iodebeziumtxId arrives as iodebeziumtxid) and
// data. It returns ok=false when ext has no iodebeziumop: the data is then a
// plain envelope for Decode.
func FromCloudEvent(ext map[string]any, data []byte) (e *Envelope, ok bool, err error) {
	get := func(name string) string {
		for k, v := range ext {
			if strings.EqualFold(k, "iodebezium"+name) && v != nil {
				return fmt.Sprint(v)
			}
		}
		return ""
	}
	op := get("op")
	if op == "" {
		return nil, false, nil
	}
	var images struct {
		Before  json.RawMessage `json:"before"`
		After   json.RawMessage `json:"after"`
		Payload json.RawMessage `json:"payload"`
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &images); err != nil {
			return nil, true, fmt.Errorf("debezium cloudevent data: %w", err)
		}
		if present(images.Payload) && !present(images.Before) && !present(images.After) {
			if err := json.Unmarshal(images.Payload, &images); err != nil {
				return nil, true, fmt.Errorf("debezium cloudevent data payload: %w", err)
			}
		}
	}
	number := func(name string) (int64, error) {
		raw := get(name)
		if raw == "" || raw == "null" {
			return 0, nil
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("debezium cloudevent extension iodebezium%s %q: %w", name, raw, err)
		}
		return n, nil
	}
	env := map[string]any{
		"op": op, "before": images.Before, "after": images.After,
	}
	src := map[string]any{
		"version": get("version"), "connector": get("connector"), "name": get("name"),
		"snapshot": get("snapshot"), "db": get("db"), "schema": get("schema"), "table": get("table"),
	}
	for _, f := range []struct{ ext, field string }{{"tsms", "ts_ms"}, {"txid", "txId"}, {"lsn", "lsn"}} {
		n, err := number(f.ext)
		if err != nil {
			return nil, true, err
		}
		src[f.field] = n
	}
	env["source"] = src
	b, err := json.Marshal(env)
	if err != nil {
		return nil, true, fmt.Errorf("debezium cloudevent: %w", err)
	}
	e, err = Decode(b)
	return e, true, err
}
