// Command modproxy publishes the repository's root module into a folder laid
// out as a Go module proxy (GOPROXY=file://<out>), so that builds which
// ignore the functions' `replace github.com/jobflow/jobflow => ../..` lines
// (func's host builder wraps each function in a module of its own) still
// get the root module's current code.
//
//	go run ./cmd/modproxy -root .. -out ../.jobflow/knative/goproxy -version v0.1.0
//
// The zip holds what `go build` would see in the working tree: every file
// of the root module except hidden folders, bin/, and folders that are
// modules of their own (functions/*, e2e, tools/*).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/jobflow/jobflow/e2e/internal/modproxy"
)

func main() {
	root := flag.String("root", "..", "folder of the module to publish (holds go.mod)")
	out := flag.String("out", "", "proxy folder to write (GOPROXY=file://<out>)")
	version := flag.String("version", "v0.1.0", "version to publish the module as")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "modproxy: -out is required")
		os.Exit(2)
	}
	path, err := modproxy.Publish(*root, *out, *version)
	if err != nil {
		slog.Error("modproxy", "err", err)
		os.Exit(1)
	}
	slog.Info("published", "module", path, "version", *version, "proxy", *out)
}
