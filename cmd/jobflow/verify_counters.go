package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jobflow/jobflow/pkg/counters/verify"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

func init() {
	registerVerifier("counters", "every user's counters against count(*) in the dialogs database "+
		"[--dialogs-url URL] [--counters-url URL] [--wait D] [--limit N]", verifyCounters)
}

// countersDefaults points the counters' databases at the ones `jobflow
// up` makes unless they are set: databases dialogs and counters on the
// server of JOBFLOW_POSTGRES_URL, else of JOBFLOW_POSTGRES_PORT.
func countersDefaults() error {
	if err := jobsDefaults(); err != nil { // JOBFLOW_POSTGRES_URL from the engine's settings
		return err
	}
	for k, db := range map[string]string{"JOBFLOW_DIALOGS_URL": "dialogs", "JOBFLOW_COUNTERS_URL": "counters"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, pgdb.WithDatabase(os.Getenv("JOBFLOW_POSTGRES_URL"), db))
		}
	}
	return nil
}

func verifyCounters(ctx context.Context, args []string, out io.Writer) error {
	if err := countersDefaults(); err != nil {
		return err
	}
	err := verify.RunCounters(ctx, args, out)
	if errors.Is(err, verify.ErrDrift) {
		return fmt.Errorf("%w: %w", errDrift, err)
	}
	return err
}
