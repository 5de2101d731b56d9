package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// prober measures the time to recover after a fault: a probe job must be
// accepted and finish in PostgreSQL, a probe message must reach the
// recipient's counters (CDC and counter included), and a probe order must
// be decided.
type prober struct {
	jobs              *Jobs
	counters          *Counters
	jobsDB, dialogsDB *pgxpool.Pool
	countersDB        *pgxpool.Pool
	orders            *Orders // nil: no orders probe
	ordersDB          *pgxpool.Pool
	sender, recipient int64 // users only the probe writes to
	deadline          time.Duration
}

// recovered waits until both probes went through and returns the time
// since at; an error if they did not within the deadline.
func (p *prober) recovered(ctx context.Context, at time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.deadline)
	defer cancel()
	jobDone, orderDone := make(chan error, 1), make(chan error, 1)
	go func() { jobDone <- p.jobProbe(ctx) }()
	go func() { orderDone <- p.orderProbe(ctx) }()
	cerr := p.counterProbe(ctx)
	jerr, oerr := <-jobDone, <-orderDone
	took := time.Since(at)
	switch {
	case jerr != nil:
		return took, fmt.Errorf("jobs did not recover in %s: %w", p.deadline, jerr)
	case cerr != nil:
		return took, fmt.Errorf("counters did not recover in %s: %w", p.deadline, cerr)
	case oerr != nil:
		return took, fmt.Errorf("orders did not recover in %s: %w", p.deadline, oerr)
	}
	return took, nil
}

func (p *prober) jobProbe(ctx context.Context) error {
	id := p.jobs.Submit(ctx)
	if id == "" {
		return fmt.Errorf("probe job not accepted")
	}
	return poll(ctx, func() bool { return JobFinished(ctx, p.jobsDB, id) })
}

// orderProbe places an order and waits for its decision (confirmed,
// rejected, or timed out by the saga: decided all the same).
func (p *prober) orderProbe(ctx context.Context) error {
	if p.orders == nil {
		return nil
	}
	id := p.orders.Place(ctx, p.orders.customers[0], 1)
	if id == "" {
		return fmt.Errorf("probe order not accepted")
	}
	return poll(ctx, func() bool { return OrderDecided(ctx, p.ordersDB, id) })
}

func (p *prober) counterProbe(ctx context.Context) error {
	if p.counters.Post(ctx, p.sender, p.recipient) == 0 {
		return fmt.Errorf("probe message not accepted")
	}
	return poll(ctx, func() bool { return UserSettled(ctx, p.dialogsDB, p.countersDB, p.recipient) })
}

// poll calls done every 100 ms until it holds or ctx ends.
func poll(ctx context.Context, done func() bool) error {
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
