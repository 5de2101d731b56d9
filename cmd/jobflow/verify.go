package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// errDrift is a verifier's finding: the view differs from its source (exit 1).
var errDrift = errors.New("drift")

// verifier checks one view against where it comes from. run returns
// errDrift (wrapped or not) on drift, another error when it could not
// check.
type verifier struct {
	help string
	run  func(ctx context.Context, args []string, out io.Writer) error
}

// verifiers is the registry `jobflow verify <name>` and `verify all` use;
// each domain adds its own from its file's init (verify_<domain>.go).
var verifiers = map[string]verifier{}

func registerVerifier(name, help string, run func(ctx context.Context, args []string, out io.Writer) error) {
	if _, dup := verifiers[name]; dup || name == "all" {
		panic("verifier " + name + " registered twice")
	}
	verifiers[name] = verifier{help: help, run: run}
}

func verifierNames() []string {
	names := make([]string, 0, len(verifiers))
	for n := range verifiers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func verifyUsage() string {
	u := "usage: jobflow verify <view> [flags] | all\n"
	for _, n := range verifierNames() {
		u += fmt.Sprintf("  %-10s %s\n", n, verifiers[n].help)
	}
	return u + "  all        every verifier above with its defaults; exit 1 if any finds drift\n"
}

// runVerify is `jobflow verify`: exit 1 (errPartial) on drift.
func runVerify(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError(verifyUsage())
	}
	if args[0] == "all" {
		if len(args) > 1 {
			return usageError(verifyUsage())
		}
		return verifyAll(ctx, out)
	}
	v, ok := verifiers[args[0]]
	if !ok {
		return usageError(verifyUsage())
	}
	err := v.run(ctx, args[1:], out)
	if errors.Is(err, errDrift) {
		return errPartial
	}
	return err
}

// verifyAll runs every verifier; drift in any is exit 1, a verifier that
// could not check (and no drift elsewhere) exit 2.
func verifyAll(ctx context.Context, out io.Writer) error {
	var drift, failed []string
	for _, n := range verifierNames() {
		fmt.Fprintf(out, "== verify %s\n", n)
		err := verifiers[n].run(ctx, nil, out)
		switch {
		case err == nil:
			fmt.Fprintf(out, "== %s: ok\n", n)
		case errors.Is(err, errDrift):
			drift = append(drift, n)
			fmt.Fprintf(out, "== %s: DRIFT\n", n)
		default:
			failed = append(failed, n)
			fmt.Fprintf(out, "== %s: could not check: %v\n", n, err)
		}
	}
	switch {
	case len(drift) > 0:
		fmt.Fprintf(out, "drift in %v\n", drift)
		return errPartial
	case len(failed) > 0:
		return fmt.Errorf("could not check %v", failed)
	}
	fmt.Fprintf(out, "all %d verifiers: no drift\n", len(verifiers))
	return nil
}
