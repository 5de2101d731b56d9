// Command jobflow-func builds or deploys the repository's functions with
// the Knative Functions CLI and its host builder (no container engine),
// giving func the module proxy and module cache that let the functions'
// builds see the root module's working tree (see e2e/funcbuild).
//
//	jobflow-func [-func PATH] [-work DIR] build  [function...]
//	jobflow-func [-func PATH] [-work DIR] [-namespace NS] deploy [function...]
//
// With no function named it does all of functions/*. deploy needs a
// kubeconfig (KUBECONFIG) and the registry localhost:5001 (make kind-up).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jobflow/jobflow/e2e/funcbuild"
	"github.com/jobflow/jobflow/e2e/internal/repo"
)

func main() {
	funcBin := flag.String("func", os.Getenv("JOBFLOW_FUNC"), "func CLI (default $JOBFLOW_FUNC)")
	work := flag.String("work", "", "work folder (default <repo>/.jobflow/knative/func)")
	namespace := flag.String("namespace", "jobflow", "namespace to deploy into")
	flag.Parse()
	if err := run(*funcBin, *work, *namespace, flag.Args()); err != nil {
		slog.Error("jobflow-func", "err", err)
		os.Exit(1)
	}
}

func run(funcBin, work, namespace string, args []string) error {
	if funcBin == "" || len(args) == 0 || (args[0] != "build" && args[0] != "deploy") {
		return fmt.Errorf("usage: jobflow-func -func PATH build|deploy [function...]")
	}
	root, err := repo.Root()
	if err != nil {
		return err
	}
	if work == "" {
		work = filepath.Join(root, ".jobflow", "knative", "func")
	}
	b, err := funcbuild.New(funcBin, root, work)
	if err != nil {
		return err
	}
	names := args[1:]
	if len(names) == 0 {
		if names, err = b.Functions(); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, name := range names {
		start := time.Now()
		switch args[0] {
		case "build":
			_, err = b.Build(ctx, name)
		case "deploy":
			err = b.Deploy(ctx, name, namespace)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", args[0], name, err)
		}
		slog.Info(args[0]+" done", "function", name, "took", time.Since(start).Round(100*time.Millisecond), "log", b.Log(name, args[0]))
	}
	return nil
}
