package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

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
	srv := &http.Server{Handler: in, ReadHeaderTimeout: 10 * time.Second}
	l.run(func(ctx context.Context) {
		go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()); _ = in.Close() }()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("ingress", "err", err)
		}
	})
	return nil
}
