package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/procs"
)

// buildSinks builds the sink functions once, where the engine looks for them.
func buildSinks(root, stateDir string, names ...string) error {
	for _, n := range names {
		cmd := exec.Command("go", "build", "-o", filepath.Join(stateDir, "bin", n), "./cmd/"+n)
		cmd.Dir = filepath.Join(root, "functions", n)
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", n, err, out)
		}
	}
	return nil
}

// engineRun is the local engine running some functions (and their
// KafkaSources, from triggers/) against the bench's broker and servers.
type engineRun struct {
	eng    *engine.Engine
	cancel context.CancelFunc
	done   chan error
	env    []string
}

// startEngine runs functions with env set for their processes (they
// inherit the engine's environment).
func startEngine(o *options, brokers []string, pgURL, chDB string, env map[string]string, functions ...string) (*engineRun, error) {
	var set []string
	for k, v := range env {
		os.Setenv(k, v)
		set = append(set, k)
	}
	os.Setenv("JOBFLOW_CLICKHOUSE_DB", chDB)
	set = append(set, "JOBFLOW_CLICKHOUSE_DB")
	ingress, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	cfg := engine.Config{
		Root: o.Root, StateDir: o.engineDir(), Namespace: "jobflow",
		KafkaBrokers: brokers, PostgresURL: pgURL, ClickHouseAddr: o.ClickHouseAddr, Adapters: false,
		IngressPort: ingress, AdminPort: admin, CommitInterval: 5 * time.Second,
		StartTimeout: 2 * time.Minute, Functions: functions, SkipBuild: true, OneEventPerRequest: env["JOBFLOW_ONE_EVENT_PER_REQUEST"] == "true",
	}
	logf, err := os.OpenFile(filepath.Join(o.Dir, "engine.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	eng := engine.New(cfg, slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn})), logf)
	ctx, cancel := context.WithCancel(context.Background())
	r := &engineRun{eng: eng, cancel: cancel, done: make(chan error, 1), env: set}
	go func() { r.done <- eng.Run(ctx); logf.Close() }()
	select {
	case <-eng.Ready():
		return r, nil
	case err := <-r.done:
		r.unset()
		return nil, fmt.Errorf("engine stopped before it was ready (see %s): %v", logf.Name(), err)
	case <-time.After(3 * time.Minute):
		_ = r.stop()
		return nil, fmt.Errorf("engine not ready after 3 minutes (see %s)", logf.Name())
	}
}

func (r *engineRun) unset() {
	for _, k := range r.env {
		os.Unsetenv(k)
	}
}

func (r *engineRun) stop() error {
	defer r.unset()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("engine did not stop within 2 minutes")
	}
}

// histogram is a snapshot of the engine's delivery-time histogram of one
// KafkaSource (jobflow_source_delivery_seconds): the time from handing a
// record to the sink to its acknowledgement, i.e. what the sink adds.
type histogram struct {
	count  uint64
	sum    float64
	bounds []float64
	cum    []uint64
}

func deliveryHistogram(source string) histogram {
	return sourceHistogram("jobflow_source_delivery_seconds", source)
}

// recordHistogram is the source's produce-to-acknowledgement latency.
func recordHistogram(source string) histogram {
	return sourceHistogram("jobflow_source_record_latency_seconds", source)
}

func sourceHistogram(metric, source string) histogram {
	mfs, _ := prometheus.DefaultGatherer.Gather()
	return findHistogram(mfs, metric, "source", source)
}

// instanceHistogram is a histogram of a function instance, read from its
// /metrics (e.g. jobflow_sink_batch_duration_seconds, function=chsink).
func instanceHistogram(url, metric, label, value string) histogram {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return histogram{}
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return histogram{}
	}
	mfs := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		mfs = append(mfs, mf)
	}
	return findHistogram(mfs, metric, label, value)
}

// findHistogram is the first histogram of metric whose label has value.
func findHistogram(mfs []*dto.MetricFamily, metric, label, value string) histogram {
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := false
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == label && l.GetValue() == value)
			}
			if !match {
				continue
			}
			h := histogram{count: m.GetHistogram().GetSampleCount(), sum: m.GetHistogram().GetSampleSum()}
			for _, b := range m.GetHistogram().GetBucket() {
				h.bounds = append(h.bounds, b.GetUpperBound())
				h.cum = append(h.cum, b.GetCumulativeCount())
			}
			return h
		}
	}
	return histogram{}
}

// since is h minus an earlier snapshot.
func (h histogram) since(prev histogram) histogram {
	out := histogram{count: h.count - prev.count, sum: h.sum - prev.sum, bounds: h.bounds, cum: make([]uint64, len(h.cum))}
	for i := range h.cum {
		out.cum[i] = h.cum[i]
		if i < len(prev.cum) {
			out.cum[i] -= prev.cum[i]
		}
	}
	return out
}

// quantile interpolates linearly inside the bucket holding q, as
// Prometheus's histogram_quantile does; bucket bounds double from 0.5 ms.
func (h histogram) quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := q * float64(h.count)
	lower, prevCum := 0.0, uint64(0)
	for i, b := range h.bounds {
		if float64(h.cum[i]) >= rank {
			inBucket := float64(h.cum[i] - prevCum)
			frac := 1.0
			if inBucket > 0 {
				frac = (rank - float64(prevCum)) / inBucket
			}
			return time.Duration((lower + (b-lower)*frac) * float64(time.Second))
		}
		lower, prevCum = b, h.cum[i]
	}
	return time.Duration(math.Inf(1))
}
