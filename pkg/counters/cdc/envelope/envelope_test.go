package envelope

import "testing"

// Every documented form of the envelope decodes to the same change.
func TestDecodeVariants(t *testing.T) {
	const after = `"after":{"id":7,"recipient_id":3,"read":false}`
	cases := map[string]struct {
		body         string
		snapshot     Snapshot
		inSnapshot   bool
		lsn, txID    int64
		wantAfter    bool
		wantDecodeOp string
	}{
		"snapshot as a string (connectors)":     {`{"op":"c",` + after + `,"source":{"table":"messages","schema":"public","lsn":5,"txId":9,"snapshot":"false"}}`, "false", false, 5, 9, true, "c"},
		"snapshot as a boolean (docs example)":  {`{"op":"c",` + after + `,"source":{"table":"messages","schema":"public","lsn":5,"snapshot":false}}`, "false", false, 5, 0, true, "c"},
		"snapshot true boolean, op r":           {`{"op":"r",` + after + `,"source":{"table":"messages","schema":"public","lsn":5,"snapshot":true}}`, "true", true, 5, 0, true, "r"},
		"snapshot last":                         {`{"op":"r",` + after + `,"source":{"table":"messages","lsn":5,"snapshot":"last"}}`, "last", true, 5, 0, true, "r"},
		"snapshot incremental":                  {`{"op":"r",` + after + `,"source":{"table":"messages","lsn":5,"snapshot":"incremental"}}`, "incremental", true, 5, 0, true, "r"},
		"snapshot null, lsn and txId null":      {`{"op":"c",` + after + `,"source":{"table":"messages","lsn":null,"txId":null,"xmin":null,"snapshot":null}}`, "", false, 0, 0, true, "c"},
		"newer fields (ts_us, ts_ns, sequence)": {`{"op":"c",` + after + `,"ts_us":1,"ts_ns":2,"source":{"table":"messages","lsn":5,"ts_us":1,"ts_ns":2,"sequence":"[\"1\",\"5\"]","snapshot":"false"}}`, "false", false, 5, 0, true, "c"},
		"schemas.enable=true":                   {`{"schema":{"type":"struct"},"payload":{"op":"c",` + after + `,"source":{"table":"messages","lsn":5,"snapshot":true}}}`, "true", true, 5, 0, true, "c"},
		"logical decoding message":              {`{"op":"m","ts_ms":1,"source":{"lsn":5,"snapshot":false},"message":{"prefix":"p","content":"eA=="}}`, "false", false, 5, 0, false, "m"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := Decode([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if e.Op != c.wantDecodeOp || e.Source.Snapshot != c.snapshot || e.Source.Snapshot.InSnapshot() != c.inSnapshot ||
				e.Source.LSN != c.lsn || e.Source.TxID != c.txID || e.HasAfter() != c.wantAfter {
				t.Fatalf("decoded %+v", e)
			}
		})
	}
	for name, body := range map[string]string{
		"snapshot a number": `{"op":"c",` + after + `,"source":{"table":"messages","lsn":5,"snapshot":1}}`,
		"no table":          `{"op":"c",` + after + `,"source":{"lsn":5}}`,
	} {
		if _, err := Decode([]byte(body)); err == nil {
			t.Errorf("%s: accepted %s", name, body)
		}
	}
}

// The CloudEvents converter's form: source and op in iodebezium* extensions.
func TestFromCloudEvent(t *testing.T) {
	ext := map[string]any{
		"iodebeziumop": "u", "iodebeziumconnector": "postgresql", "iodebeziumname": "dialogs",
		"iodebeziumsnapshot": "false", "iodebeziumdb": "dialogs", "iodebeziumschema": "public",
		"iodebeziumtable": "messages", "iodebeziumtxid": "559", "iodebeziumlsn": "24023128", "iodebeziumtsms": int32(17),
	}
	for _, data := range []string{
		`{"before":{"id":7,"recipient_id":3,"read":false},"after":{"id":7,"recipient_id":3,"read":true}}`,
		`{"schema":{},"payload":{"before":{"id":7,"recipient_id":3,"read":false},"after":{"id":7,"recipient_id":3,"read":true}}}`,
	} {
		e, ok, err := FromCloudEvent(ext, []byte(data))
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", data, ok, err)
		}
		if e.Op != "u" || e.Source.Table != "messages" || e.Source.Schema != "public" || e.Source.LSN != 24023128 ||
			e.Source.TxID != 559 || e.Source.TsMs != 17 || !e.HasBefore() || !e.HasAfter() {
			t.Fatalf("%s: decoded %+v", data, e)
		}
	}
	if _, ok, _ := FromCloudEvent(map[string]any{"partitionkey": "x"}, []byte(`{}`)); ok {
		t.Fatal("an event without iodebeziumop taken for the CloudEvents converter's form")
	}
	if _, _, err := FromCloudEvent(map[string]any{"iodebeziumop": "c", "iodebeziumtable": "messages", "iodebeziumlsn": "x"}, []byte(`{"after":{"id":1}}`)); err == nil {
		t.Fatal("a non-numeric lsn accepted")
	}
}
