// Package promlocal runs a local Prometheus for `jobflow up`: it writes the
// configuration (one scrape job whose targets come from file-based service
// discovery), keeps the targets file current as the engine's processes come
// and go, and supervises Debian's prometheus binary.
package promlocal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// TargetGroup is one entry of a file_sd_configs file: addresses (host:port)
// scraped on /metrics, with labels added to their series.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Config of the local Prometheus.
type Config struct {
	Bin            string        // the prometheus binary
	Dir            string        // holds prometheus.yml, targets/, data/ and the log
	Port           int           // of its web UI and API
	ScrapeInterval time.Duration // also how soon a changed targets file is read again
	Retention      time.Duration // of its data
}

// TargetsFile is the file_sd file the engine keeps current (also usable by
// a Prometheus run elsewhere).
func TargetsFile(dir string) string { return filepath.Join(dir, "targets", "jobflow.json") }

// WriteConfig writes dir/prometheus.yml: one job, jobflow, whose targets are
// in targets/*.json, reread on change and every scrape interval.
func WriteConfig(cfg Config) (string, error) {
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "targets"), 0o755); err != nil {
		return "", err
	}
	iv := cfg.ScrapeInterval.String()
	yml := fmt.Sprintf(`# Written by jobflow up; edits are overwritten at the next start.
global:
  scrape_interval: %s
  evaluation_interval: %s
scrape_configs:
  - job_name: jobflow
    file_sd_configs:
      - files: [%q]
        refresh_interval: %s
`, iv, iv, filepath.Join(cfg.Dir, "targets", "*.json"), iv)
	path := filepath.Join(cfg.Dir, "prometheus.yml")
	return path, os.WriteFile(path, []byte(yml), 0o644)
}

// TargetsWriter writes the targets file when what it holds changes; the
// file is replaced by a rename, so Prometheus never reads half of one.
type TargetsWriter struct {
	path string
	last []byte
}

// NewTargetsWriter writes to path.
func NewTargetsWriter(path string) *TargetsWriter { return &TargetsWriter{path: path} }

// Write stores groups (sorted, so the same set gives the same file) and
// reports whether the file changed.
func (w *TargetsWriter) Write(groups []TargetGroup) (bool, error) {
	for i := range groups {
		slices.Sort(groups[i].Targets)
	}
	slices.SortFunc(groups, func(a, b TargetGroup) int { return bytes.Compare(groupKey(a), groupKey(b)) })
	b, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return false, err
	}
	if bytes.Equal(b, w.last) {
		return false, nil
	}
	tmp := w.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, w.path); err != nil {
		return false, err
	}
	w.last = b
	return true, nil
}

func groupKey(g TargetGroup) []byte {
	b, _ := json.Marshal(g.Labels)
	return b
}

// Run starts prometheus with cfg and keeps it running until ctx ends (a
// crash is restarted after a pause), then stops it with SIGTERM.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	bin, err := exec.LookPath(cfg.Bin)
	if err != nil {
		return fmt.Errorf("prometheus: %w (make deps installs Debian's prometheus)", err)
	}
	conf, err := WriteConfig(cfg)
	if err != nil {
		return fmt.Errorf("prometheus config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(cfg.Dir, "prometheus.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{
		"--config.file=" + conf,
		"--storage.tsdb.path=" + filepath.Join(cfg.Dir, "data"),
		"--storage.tsdb.retention.time=" + model(cfg.Retention),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", cfg.Port),
	}
	for ctx.Err() == nil {
		err := runOnce(ctx, bin, args, logf)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("prometheus exited; restarting in 5s", "err", err, "log", logf.Name())
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	return nil
}

func runOnce(ctx context.Context, bin string, args []string, out io.Writer) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return fmt.Errorf("exited: %w", err)
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return nil
}

// model formats d as a Prometheus duration (whole hours, at least 1h).
func model(d time.Duration) string {
	h := int(d.Hours())
	if h < 1 {
		h = 1
	}
	return fmt.Sprintf("%dh", h)
}

// WaitReady waits until the Prometheus on port answers /-/ready.
func WaitReady(ctx context.Context, port int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/-/ready", port)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus on %d not ready: %w", port, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
