package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

var seeds = []string{
	`[]`, ` [ ] `, `[{}]`, `[1,"a",null,[1,[2]],{"x":{"y":[]}}]`, `[true , false]`,
	`[{"a":"x,]}"},{"b":[1,2]}]`, `[{"a":"\"],"}, {"b":"\\"}]`, "[\n {\"a\":1}\n,\n{\"b\":2}\n]\n",
	``, `{}`, `[`, `[{}`, `[{},]`, `[,]`, `[{}] x`, `[}]`, `[1}2]`, `["abc]`, `[{"a":"\"}]`, "[0\f]", `[1 2]`,
	`{"data":{"a":[1,"}"]},"id":"x"}`, `{"id":"x","data":"s"}`, `{"a":1,"data":null}`, `{"d\u0061ta":1}`, `{"data":}`, `{"data"}`,
}

func trim(b []byte) []byte { return bytes.Trim(b, " \t\n\r") }

// For valid JSON, Split must find exactly the elements encoding/json
// finds; for anything else it must fail or return elements that are not
// all valid JSON (which their decoder then refuses).
func checkSplit(t *testing.T, in []byte) {
	got, err := Split(in)
	var want []json.RawMessage
	if json.Unmarshal(in, &want) == nil {
		if err != nil {
			t.Fatalf("%q: valid array refused: %v", in, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json finds %d", in, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], trim(want[i])) {
				t.Fatalf("%q: element %d = %q, want %q", in, i, got[i], want[i])
			}
		}
		return
	}
	if err != nil {
		return
	}
	for _, e := range got {
		if !json.Valid(e) {
			return
		}
	}
	t.Fatalf("%q: not a JSON array, yet split into valid elements %q", in, got)
}

// For a valid JSON object, Member must find what encoding/json finds
// (unless the key is escaped: then it must say not found).
func checkMember(t *testing.T, in []byte) {
	start, end, found, err := Member(in, "data")
	var want map[string]json.RawMessage
	if json.Unmarshal(in, &want) != nil {
		return // not an object: any answer is fine, the decoder refuses it
	}
	if err != nil {
		t.Fatalf("%q: valid object refused: %v", in, err)
	}
	v, has := want["data"]
	if found && (!has || !bytes.Equal(in[start:end], trim(v))) {
		if !bytes.Contains(in, []byte(`\`)) { // duplicate or escaped keys: encoding/json keeps the last
			t.Fatalf("%q: data = %q, encoding/json: %q (present %v)", in, in[start:end], v, has)
		}
	}
	if !found && has && !bytes.Contains(in, []byte(`\`)) && bytes.Count(in, []byte(`"data"`)) > 0 {
		t.Fatalf("%q: data not found, encoding/json finds %q", in, v)
	}
}

func TestSplit(t *testing.T) {
	for _, s := range seeds {
		checkSplit(t, []byte(s))
	}
}

func TestMember(t *testing.T) {
	for _, s := range seeds {
		checkMember(t, []byte(s))
	}
	b := []byte(`{"id":"x","data":{"a":[1,"}"]},"z":2}`)
	s, e, ok, err := Member(b, "data")
	if err != nil || !ok || string(b[s:e]) != `{"a":[1,"}"]}` {
		t.Fatalf("Member = %q %v %v", b[s:e], ok, err)
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkSplit)
}

func FuzzMember(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkMember)
}
