package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/kafkabroker"
	"github.com/jobflow/jobflow/internal/kafkasink"
)

// startIngress serves the KafkaSinks (/<namespace>/<sink>) on ln until
// the layer stops.
func (e *Engine) startIngress(l *layer, ln net.Listener, brokers []string, sinks []kafkasink.Sink) error {
	in, err := kafkasink.New(brokers, sinks, e.log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	e.serve(l, ln, in, "ingress")
	return nil
}

// startBrokerIngress serves the Brokers (/<namespace>/<broker>) on ln, on
// their own port as Knative serves them on their own host. Each trigger's
// group first gets its starting offset (the end of the broker's topic, if
// it has none), so that every event the ingress accepts from now on
// reaches every trigger, however long its consumer takes to start.
func (e *Engine) startBrokerIngress(l *layer, ln net.Listener, brokers []string, p *plan.Plan) error {
	for _, t := range p.Triggers {
		if err := kafkabroker.CommitLatest(brokers, t.Group, t.Topic); err != nil {
			_ = ln.Close()
			return fmt.Errorf("trigger %s: starting offsets: %w", t.Name, err)
		}
	}
	bs := make([]kafkasink.Sink, 0, len(p.Brokers))
	for _, b := range p.Brokers {
		bs = append(bs, b.Sink())
	}
	in, err := kafkasink.NewBrokers(brokers, bs, e.log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	e.serve(l, ln, in, "broker ingress")
	return nil
}

// serve runs an ingress on ln until the layer stops, then closes it.
func (e *Engine) serve(l *layer, ln net.Listener, in *kafkasink.Ingress, what string) {
	srv := &http.Server{Handler: in, ReadHeaderTimeout: 10 * time.Second}
	l.run(func(ctx context.Context) {
		go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()); _ = in.Close() }()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error(what, "err", err)
		}
	})
}
