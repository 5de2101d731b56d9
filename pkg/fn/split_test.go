package fn

import (
	"bytes"
	"encoding/json"
	"testing"
)

var splitSeeds = []string{
	`[]`, ` [ ] `, `[{}]`, `[1,"a",null,[1,[2]],{"x":{"y":[]}}]`,
	`[{"a":"x,]}"},{"b":[1,2]}]`, `[{"a":"\"],"}, {"b":"\\"}]`, "[\n {\"a\":1}\n,\n{\"b\":2}\n]\n",
	``, `{}`, `[`, `[{}`, `[{},]`, `[,]`, `[{}] x`, `[}]`, `[1}2]`, `["abc]`, `[{"a":"\"}]`,
}

// For valid JSON, splitJSONArray must find exactly the elements
// encoding/json finds; for anything else it must fail or hand the decoder
// elements that are not valid JSON (which the decoder then refuses).
func checkSplit(t *testing.T, in []byte) {
	got, err := splitJSONArray(in)
	var want []json.RawMessage
	if json.Unmarshal(in, &want) == nil {
		if err != nil {
			t.Fatalf("%q: valid array refused: %v", in, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json finds %d", in, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], bytes.Trim(want[i], " \t\n\r")) {
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
			return // the event decoder refuses it
		}
	}
	t.Fatalf("%q: not a JSON array, yet split into valid elements %q", in, got)
}

func TestSplitJSONArray(t *testing.T) {
	for _, s := range splitSeeds {
		checkSplit(t, []byte(s))
	}
}

func FuzzSplitJSONArray(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkSplit)
}
