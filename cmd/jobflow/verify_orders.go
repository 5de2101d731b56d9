package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	ordersverify "github.com/jobflow/jobflow/pkg/orders/verify"
)

func init() {
	registerVerifier("orders", "the orders invariants (money, stock, couriers, decisions, reserves, messages) in the services' databases "+
		"[--postgres-url URL] [--<service>-url URL] [--wait D] [--limit N]", verifyOrders)
}

// verifyOrders is `jobflow verify orders [flags]`: exit 1 on any violated
// invariant (pkg/orders/verify), 2 when it could not check.
func verifyOrders(ctx context.Context, args []string, out io.Writer) error {
	if err := jobsDefaults(); err != nil { // JOBFLOW_POSTGRES_URL: the server `jobflow up` starts
		return err
	}
	err := ordersverify.Run(ctx, args, out)
	if errors.Is(err, ordersverify.ErrViolation) {
		return fmt.Errorf("%w: %w", errDrift, err)
	}
	return err
}
