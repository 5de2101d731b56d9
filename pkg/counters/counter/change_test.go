package counter

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/counters/cdc/envelope"
)

type msg struct {
	id, recipient int64
	read          bool
}

func image(m *msg) json.RawMessage {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"id": m.id, "sender_id": 999, "recipient_id": m.recipient, "body": "x", "read": m.read})
	return b
}

func env(op string, lsn int64, before, after *msg) *envelope.Envelope {
	return &envelope.Envelope{Op: op, Before: image(before), After: image(after),
		Source: envelope.Source{DB: "dialogs", Schema: "public", Table: "messages", LSN: lsn}}
}

// TestDeltasAnyOrder: the deltas of every message's life, applied in a
// random order, sum to the counts of the rows that exist at the end.
func TestDeltasAnyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var envs []*envelope.Envelope
	want := map[int64][2]int64{}
	lsn := int64(100)
	for id := int64(1); id <= 3000; id++ {
		cur := &msg{id: id, recipient: 1 + r.Int64N(20), read: r.IntN(5) == 0} // some are created read
		lsn++
		envs = append(envs, env("c", lsn, nil, cur))
		if !cur.read && r.IntN(2) == 0 {
			next := *cur
			next.read = true
			lsn++
			envs = append(envs, env("u", lsn, cur, &next))
			cur = &next
		}
		if r.IntN(3) == 0 { // an update that changes neither recipient nor read
			next := *cur
			lsn++
			envs = append(envs, env("u", lsn, cur, &next))
		}
		if r.IntN(6) == 0 { // deleted, read or not
			lsn++
			envs = append(envs, env("d", lsn, cur, nil))
			continue
		}
		w := want[cur.recipient]
		w[0]++
		if !cur.read {
			w[1]++
		}
		want[cur.recipient] = w
	}
	r.Shuffle(len(envs), func(i, j int) { envs[i], envs[j] = envs[j], envs[i] })
	got := map[int64][2]int64{}
	ids := map[string]bool{}
	for _, e := range envs {
		it, err := FromEnvelope(e, DefaultTables, "")
		if err != nil {
			t.Fatal(err)
		}
		if ids[it.ID.String()] {
			t.Fatalf("two changes with one id %s", it.ID)
		}
		ids[it.ID.String()] = true
		for _, d := range it.Deltas {
			g := got[d.UserID]
			g[0] += d.Total
			g[1] += d.Unread
			got[d.UserID] = g
		}
	}
	for u := int64(1); u <= 20; u++ {
		if got[u] != want[u] {
			t.Errorf("user %d: got total,unread %v, want %v", u, got[u], want[u])
		}
	}
}

func TestEventIDFromTheChange(t *testing.T) {
	a := env("c", 42, nil, &msg{id: 7, recipient: 1})
	b := env("c", 42, nil, &msg{id: 7, recipient: 1})
	b.Source.Name, b.Source.Version, b.Source.TxID = "other-server", "debezium-2.7", 12 // a real Debezium replacing ours
	ia, _ := FromEnvelope(a, DefaultTables, "src#partition:0/offset:1")
	ib, _ := FromEnvelope(b, DefaultTables, "src#partition:3/offset:9")
	if ia.ID != ib.ID {
		t.Fatalf("the same change at two offsets has two ids")
	}
	c := env("c", 42, nil, &msg{id: 8, recipient: 1}) // same WAL record (multi-insert), other row
	ic, _ := FromEnvelope(c, DefaultTables, "")
	if ic.ID == ia.ID {
		t.Fatalf("two rows of one WAL record share an id")
	}
}

func TestInvalidEvents(t *testing.T) {
	cases := map[string]string{
		"update without before (no REPLICA IDENTITY FULL)": `{"op":"u","before":null,"after":{"id":1,"recipient_id":2,"read":true},"source":{"table":"messages","schema":"public","lsn":5}}`,
		"delete with key only":                             `{"op":"d","before":{"id":1},"after":null,"source":{"table":"messages","schema":"public","lsn":5}}`,
		"unknown op":                                       `{"op":"x","after":{"id":1},"source":{"table":"messages","schema":"public","lsn":5}}`,
		"not json":                                         `hello`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := envelope.Decode([]byte(body))
			if err == nil {
				_, err = FromEnvelope(e, DefaultTables, "")
			}
			if err == nil {
				t.Fatalf("accepted %s", body)
			}
		})
	}
	for _, body := range []string{"", "null"} {
		if e, err := envelope.Decode([]byte(body)); e != nil || err != nil {
			t.Fatalf("tombstone %q: %v %v", body, e, err)
		}
	}
	e, err := envelope.Decode([]byte(`{"op":"c","after":{"id":1},"source":{"table":"other","schema":"public","lsn":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if it, err := FromEnvelope(e, DefaultTables, ""); it != nil || err != nil {
		t.Fatalf("other table: %v %v", it, err)
	}
	// schemas.enable=true wraps the envelope in payload
	e, err = envelope.Decode([]byte(`{"schema":{},"payload":{"op":"c","after":{"id":1,"recipient_id":3,"read":false},"source":{"table":"messages","schema":"public","lsn":5}}}`))
	if err != nil || e == nil || e.Op != "c" {
		t.Fatalf("payload-wrapped envelope: %v %v", e, err)
	}
}

// The reported event: source.snapshot a boolean, as in Debezium's own
// documentation, and the CloudEvents converter's form, both counted.
func TestItemAcceptsDocumentedEnvelopes(t *testing.T) {
	h := &Handler{tables: DefaultTables}
	plain := cloudevents.NewEvent()
	plain.SetID("1")
	plain.SetSource("/kafkasources/counter-source#dialogs.public.messages")
	plain.SetType("dev.knative.kafka.event")
	_ = plain.SetData("application/json", json.RawMessage(`{"before":null,"after":{"id":7,"recipient_id":3,"read":false},`+
		`"source":{"version":"2.5.0.Final","connector":"postgresql","name":"dialogs","ts_ms":1,"snapshot":false,"db":"dialogs",`+
		`"schema":"public","table":"messages","txId":559,"lsn":24023128,"xmin":null},"op":"c","ts_ms":2,"transaction":null}`))
	converted := cloudevents.NewEvent()
	converted.SetID("2")
	converted.SetSource("/debezium/postgresql/dialogs")
	converted.SetType("io.debezium.connector.postgresql.DataChangeEvent")
	for k, v := range map[string]string{"iodebeziumop": "c", "iodebeziumsnapshot": "false", "iodebeziumdb": "dialogs",
		"iodebeziumschema": "public", "iodebeziumtable": "messages", "iodebeziumlsn": "24023128", "iodebeziumtxid": "559"} {
		converted.SetExtension(k, v)
	}
	_ = converted.SetData("application/json", json.RawMessage(`{"before":null,"after":{"id":7,"recipient_id":3,"read":false}}`))
	var ids []uuid.UUID
	for _, in := range []cloudevents.Event{plain, converted} {
		it, err := h.Item(in)
		if err != nil || it == nil || len(it.Deltas) != 1 || it.Deltas[0] != (Delta{UserID: 3, Total: 1, Unread: 1}) {
			t.Fatalf("%s: %+v %v", in.Type(), it, err)
		}
		ids = append(ids, it.ID)
	}
	if ids[0] != ids[1] {
		t.Fatal("one change in two forms has two ids: it would be counted twice")
	}
}

// TestASnapshotRowLosesToEveryStreamedChange: a user read by the snapshot
// (at the slot's consistent point) and changed by a transaction that began
// before it and committed after (a WAL position below that point): the
// streamed change is the newer state.
func TestASnapshotRowLosesToEveryStreamedChange(t *testing.T) {
	user := func(op string, lsn int64, name string) *UserChange {
		raw, _ := json.Marshal(map[string]any{"id": 5, "name": name})
		e := &envelope.Envelope{Op: op, After: raw, Source: envelope.Source{DB: "dialogs", Schema: "public", Table: "users", LSN: lsn}}
		it, err := FromEnvelope(e, DefaultTables, "")
		if err != nil || it == nil || it.User == nil {
			t.Fatalf("%s: %v %v", op, it, err)
		}
		return it.User
	}
	snap, streamed := user("r", 1000, "old"), user("u", 990, "new")
	if !(streamed.LSN >= snap.LSN) {
		t.Fatalf("snapshot row at %d beats the streamed change at %d", snap.LSN, streamed.LSN)
	}
}
