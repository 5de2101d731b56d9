package main

import (
	"context"
	"errors"
	"os"

	ordersverify "github.com/jobflow/jobflow/pkg/orders/verify"
)

// verifyOrders is `jobflow verify orders [flags]`: exit 1 on any violated
// invariant (pkg/orders/verify), 2 when it could not check.
func verifyOrders(ctx context.Context, args []string) error {
	err := ordersverify.Run(ctx, args, os.Stdout)
	if errors.Is(err, ordersverify.ErrViolation) {
		os.Exit(1)
	}
	return err
}
