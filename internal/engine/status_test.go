package engine

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/jobflow/jobflow/internal/kafkasource"
	"github.com/jobflow/jobflow/internal/pingsource"
	"github.com/jobflow/jobflow/internal/scaler"
)

// Every key of /status is snake_case (map keys are names, not keys).
func TestStatusKeysAreSnakeCase(t *testing.T) {
	st := Status{
		Functions: map[string]FunctionStatus{
			"fn":      {URL: "http://x", Ready: true, Scale: &scaler.Status{PerInstance: []scaler.InstanceStatus{{Slot: 1}}}},
			"adapter": {URL: "http://y"},
		},
		Sources:  map[string]kafkasource.Stats{"src": {Delivered: 1}},
		Triggers: map[string]kafkasource.Stats{"tr": {Filtered: 1}},
		Pings:    map[string]pingsource.Stats{"p": {Fired: 1}},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	names := map[string]bool{"fn": true, "adapter": true, "src": true, "tr": true, "p": true}
	var keys int
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if !names[k] {
					keys++
					if !snake.MatchString(k) {
						t.Errorf("%s.%s is not snake_case", path, k)
					}
				}
				walk(path+"."+k, c)
			}
		case []any:
			for _, c := range v {
				walk(path+"[]", c)
			}
		}
	}
	walk("", doc)
	if keys < 40 {
		t.Errorf("only %d keys checked: %s", keys, b)
	}
}
