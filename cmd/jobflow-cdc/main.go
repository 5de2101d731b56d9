// Command jobflow-cdc runs the CDC source (pkg/cdc): PostgreSQL logical
// replication of the dialogs tables into Debezium-format Kafka topics. It
// is a long-running adapter (a ContainerSource on Knative), not a
// scale-to-zero function. Config: see cdc.Config (JOBFLOW_DIALOGS_URL,
// CDC_KAFKA_BOOTSTRAP_SERVERS, CDC_*). It exits non-zero on failure; run it
// again and it resumes at the slot's confirmed LSN.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobflow/jobflow/pkg/counters/cdc"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := cdc.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := fn.NewLogger(cfg.LogLevel, "jobflow-cdc")
	a := cdc.New(cfg, log)
	if cfg.HTTPAddr != "" {
		srv := &http.Server{Addr: cfg.HTTPAddr, Handler: handler(a), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
		defer func() { _ = srv.Close() }()
	}
	if err := a.Start(ctx); err != nil {
		log.Error("cdc failed", "err", err)
		os.Exit(1)
	}
}

func handler(a *cdc.Adapter) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jobflow_cdc_transactions_total", Help: "Transactions decoded."},
			func() float64 { return float64(a.Stats().Transactions) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jobflow_cdc_events_total", Help: "Change events produced."},
			func() float64 { return float64(a.Stats().Events) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jobflow_cdc_events_acked_total", Help: "Change events acknowledged by Kafka."},
			func() float64 { return float64(a.Stats().Acked) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jobflow_cdc_snapshot_rows_total", Help: "Rows the initial snapshot sent in its Kafka transaction (read_committed consumers see them once it commits)."},
			func() float64 { return float64(a.Stats().SnapshotRows) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jobflow_cdc_confirmed_lsn", Help: "Last LSN confirmed to PostgreSQL."},
			func() float64 { return float64(a.Stats().Confirmed) }),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health/liveness", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	mux.HandleFunc("/health/readiness", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "not streaming", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK"))
	})
	return mux
}
