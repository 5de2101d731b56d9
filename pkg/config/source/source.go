// Package source is the config-source function: it reads the configuration
// repository (package gitsource) when a push webhook arrives or its poll
// comes round, diffs the newest commit key by key against what the
// config-changes topic already holds, and emits one
// dev.jobflow.config.changed event per changed key to K_SINK (a KafkaSink
// into that compacted topic).
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jobflow/jobflow/pkg/config/change"
	"github.com/jobflow/jobflow/pkg/config/gitsource"
	"github.com/jobflow/jobflow/pkg/config/store"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Config of config-source; env vars CONFIG_*.
type Config struct {
	GitURL        string        `envconfig:"GIT_URL" desc:"the configuration repository: a path (read in place) or an http(s) URL (fetched); empty: the local bare repository JOBFLOW_DIR/config.git, seeded from JOBFLOW_ROOT/config"`
	GitBranch     string        `envconfig:"GIT_BRANCH" default:"main" desc:"the branch that is the configuration"`
	GitToken      string        `envconfig:"GIT_TOKEN" desc:"token for an https repository (basic auth, user git)"`
	WebhookSecret string        `envconfig:"WEBHOOK_SECRET" desc:"secret of the push webhook (HMAC-SHA256 signature or GitLab token); empty: webhooks are not verified"`
	PollInterval  time.Duration `envconfig:"POLL_INTERVAL" default:"0s" desc:"how often an instance reads the repository on its own besides webhooks and the config-poll PingSource; 0: never"`
	HookURL       string        `envconfig:"HOOK_URL" desc:"URL the local repository's post-receive hook calls; empty: JOBFLOW_FUNCTION_URL/webhook"`
	KafkaBrokers  []string      `envconfig:"KAFKA_BROKERS" required:"true" desc:"Kafka bootstrap servers of the config topic"`
	Topic         string        `envconfig:"TOPIC" default:"config-changes" desc:"the compacted topic of changes (one partition)"`
	Source        string        `envconfig:"SOURCE" default:"/jobflow/config-source" desc:"CloudEvent source of the change events"`
}

// Local is where the engine's data dir and the repository are (set by the
// local engine); they make the local default repository.
type Local struct {
	Dir     string `envconfig:"JOBFLOW_DIR"`
	Root    string `envconfig:"JOBFLOW_ROOT"`
	SelfURL string `envconfig:"JOBFLOW_FUNCTION_URL"`
}

// Result is the answer of one sync.
type Result struct {
	Revision string            `json:"revision"`
	Changed  []string          `json:"changed"`
	Refused  map[string]string `json:"refused,omitempty"`
}

// Source syncs the repository into the topic.
type Source struct {
	cfg     Config
	repo    *gitsource.Repo
	table   *store.Table
	emitter *fn.Emitter
	log     *slog.Logger

	mu      sync.Mutex
	sent    map[string]change.Change // emitted, not yet read back from the topic
	refused map[string]string        // last sync's, to log each refusal once
}

// New returns a source over repo, publishing through emitter; table must
// follow the topic.
func New(cfg Config, repo *gitsource.Repo, table *store.Table, emitter *fn.Emitter, log *slog.Logger) *Source {
	return &Source{cfg: cfg, repo: repo, table: table, emitter: emitter, log: log,
		sent: map[string]change.Change{}, refused: map[string]string{}}
}

// LocalRepo prepares the local default repository when cfg names none:
// JOBFLOW_DIR/config.git seeded from JOBFLOW_ROOT/config, with a
// post-receive hook that calls this function's webhook. It returns the
// repository's path.
func LocalRepo(cfg Config, l Local, log *slog.Logger) (string, error) {
	if l.Dir == "" {
		return "", errors.New("CONFIG_GIT_URL is empty and there is no JOBFLOW_DIR for a local repository")
	}
	dir := filepath.Join(l.Dir, "config.git")
	created, err := gitsource.Seed(dir, filepath.Join(l.Root, "config"), cfg.GitBranch)
	if err != nil {
		return "", err
	}
	hook := cfg.HookURL
	if hook == "" && l.SelfURL != "" {
		hook = strings.TrimSuffix(l.SelfURL, "/") + WebhookPath
	}
	if hook != "" {
		if err := gitsource.InstallHook(dir, hook, cfg.WebhookSecret); err != nil {
			return "", err
		}
	}
	if created {
		log.Info("config repository seeded", "repo", dir, "from", filepath.Join(l.Root, "config"))
	}
	return dir, nil
}

// published is what the topic holds for each key, counting what this
// source emitted and has not read back yet.
func (s *Source) published() map[string]change.Change {
	snap, _ := s.table.Snapshot(func(string) bool { return true })
	out := make(map[string]change.Change, len(snap))
	for _, e := range snap {
		out[e.Key] = e.Change
	}
	for k, c := range s.sent {
		cur, ok := out[k]
		if (c.Deleted && !ok) || (ok && !c.Deleted && cur.Revision == c.Revision) {
			delete(s.sent, k) // the topic has it
			continue
		}
		if c.Deleted {
			delete(out, k)
		} else {
			out[k] = c
		}
	}
	return out
}

// Sync reads the branch's newest commit and emits a change for each key
// that differs from the topic; a key that is refused is reported with its
// reason, and the other keys apply.
func (s *Source) Sync(ctx context.Context) (Result, error) {
	select {
	case <-s.table.Ready():
	case <-ctx.Done():
		return Result{}, fn.Unavailable(errors.New("the config topic is not read yet"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	commit, err := s.repo.Head(ctx)
	if err != nil {
		return Result{}, fn.Unavailable(err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return Result{}, fn.Unavailable(fmt.Errorf("commit %s: %w", commit.Hash, err))
	}
	files, err := gitsource.ReadTree(tree)
	if err != nil {
		return Result{}, fn.Unavailable(err)
	}
	res := Result{Revision: commit.Hash.String(), Changed: []string{}, Refused: files.Refused}
	for k, why := range files.Refused {
		if s.refused[k] != why {
			s.log.Warn("config key refused", "key", k, "revision", res.Revision, "reason", why)
		}
	}
	s.refused = files.Refused
	refusedKeys.WithLabelValues().Set(float64(len(files.Refused)))
	for _, c := range gitsource.Diff(files, res.Revision, s.published()) {
		ev, err := c.Event(s.cfg.Source)
		if err == nil {
			err = s.emitter.Send(ctx, fn.DefaultOutput, ev)
		}
		if err != nil {
			changes.WithLabelValues("error").Inc()
			return res, fmt.Errorf("key %s: %w", c.Key, err)
		}
		changes.WithLabelValues("ok").Inc()
		s.sent[c.Key] = c
		res.Changed = append(res.Changed, c.Key)
		s.log.Info("config key changed", "key", c.Key, "revision", c.Revision, "previous", c.PreviousRevision, "deleted", c.Deleted)
	}
	return res, nil
}

// Poll syncs every interval until ctx ends.
func (s *Source) Poll(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("config poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
