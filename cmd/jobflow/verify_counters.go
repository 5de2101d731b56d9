package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jobflow/jobflow/pkg/counters/verify"
)

func init() {
	registerVerifier("counters", "every user's counters against count(*) in the dialogs database "+
		"[--dialogs-url URL] [--counters-url URL] [--wait D] [--limit N]", verifyCounters)
}

func verifyCounters(ctx context.Context, args []string, out io.Writer) error {
	// Defaults: the databases `jobflow up` starts.
	for k, db := range map[string]string{"JOBFLOW_DIALOGS_URL": "dialogs", "JOBFLOW_COUNTERS_URL": "counters"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, "postgres://postgres@127.0.0.1:55432/"+db+"?sslmode=disable")
		}
	}
	err := verify.RunCounters(ctx, args, out)
	if errors.Is(err, verify.ErrDrift) {
		return fmt.Errorf("%w: %w", errDrift, err)
	}
	return err
}
