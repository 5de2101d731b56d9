// Package repo finds the jobflow repository and the folders of the Go
// modules whose files the checks read (CRDs, the func.yaml schema).
package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RootModule is the repository's root module path.
const RootModule = "github.com/jobflow/jobflow"

// Root returns the repository root: the nearest folder at or above the
// working directory whose go.mod declares RootModule.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+RootModule+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repo: no go.mod of " + RootModule + " above the working directory")
		}
		dir = parent
	}
}

// ModuleDir returns the folder of a module in the module cache: the
// version the current module's build list selects when version is empty
// (`go list -m`), else path@version (`go mod download`, fetching it if
// needed).
func ModuleDir(path, version string) (string, error) {
	args := []string{"list", "-m", "-json", path}
	if version != "" {
		args = []string{"mod", "download", "-json", path + "@" + version}
	}
	cmd := exec.Command("go", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %v: %s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	var m struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go %s: module not downloaded (%s)", strings.Join(args, " "), m.Error)
	}
	return m.Dir, nil
}
