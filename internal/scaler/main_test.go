package scaler

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fakeBin is testdata/fakefn, built once for all the package's tests.
var fakeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scaler-test")
	if err != nil {
		panic(err)
	}
	fakeBin = filepath.Join(dir, "fakefn")
	if out, err := exec.Command("go", "build", "-o", fakeBin, "./testdata/fakefn").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakefn: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
