package engine

import (
	"maps"
	"testing"
)

func TestDatabasesDecode(t *testing.T) {
	var d Databases
	if err := d.Decode("dialogs:postgres://u:p@h:5432/d?sslmode=disable, counters:postgres://h/c"); err != nil {
		t.Fatal(err)
	}
	want := Databases{"dialogs": "postgres://u:p@h:5432/d?sslmode=disable", "counters": "postgres://h/c"}
	if !maps.Equal(d, want) {
		t.Errorf("got %v, want %v", d, want)
	}
	for _, bad := range []string{"dialogs", ":postgres://h/d", "dialogs:"} {
		if err := d.Decode(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
