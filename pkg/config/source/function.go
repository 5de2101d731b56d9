package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/kelseyhightower/envconfig"

	"github.com/jobflow/jobflow/pkg/config/gitsource"
	"github.com/jobflow/jobflow/pkg/config/store"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

// The paths config-source answers.
const (
	WebhookPath = "/webhook" // a push event of GitHub, Gitea or GitLab
	SyncPath    = "/sync"    // read the repository now (no payload)
)

var (
	changes     = metrics.NewCounter("config_source_changes_total", "Change events emitted, by result.", "result")
	refusedKeys = metrics.NewGauge("config_source_refused_keys", "Keys of the newest commit refused (invalid value or failing its schema).")
	webhooks    = metrics.NewCounter("config_source_webhooks_total", "Webhooks received, by outcome.", "outcome")
)

// Function is config-source as an HTTP function.
type Function struct {
	src    *Source
	cancel context.CancelFunc
	done   chan struct{}
	table  *store.Table
	cfg    Config
}

// NewFunction returns an unstarted config-source.
func NewFunction() *Function { return &Function{} }

// Start reads CONFIG_*, prepares the local repository if none is named,
// follows the topic and starts the poll.
func (f *Function) Start(context.Context, map[string]string) error {
	if err := fn.Process("CONFIG", &f.cfg); err != nil {
		return err
	}
	if len(f.cfg.KafkaBrokers) == 0 || f.cfg.KafkaBrokers[0] == "" {
		return errors.New("config-source needs CONFIG_KAFKA_BROKERS: the Kafka of the config topic")
	}
	log := fn.NewLogger(os.Getenv("LOG_LEVEL"), "config-source")
	em, err := fn.NewEmitter("config-source")
	if err != nil {
		return err
	}
	if !em.HasSink(fn.DefaultOutput) {
		return errors.New("config-source needs K_SINK: the KafkaSink of the config topic")
	}
	url := f.cfg.GitURL
	if url == "" {
		var l Local
		if err := envconfig.Process("", &l); err != nil {
			return err
		}
		if url, err = LocalRepo(f.cfg, l, log); err != nil {
			return err
		}
	}
	f.table = store.NewTable(1)
	f.src = New(f.cfg, gitsource.NewRepo(url, f.cfg.GitBranch, f.cfg.GitToken), f.table, em, log)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	follower := &store.Follower{Brokers: f.cfg.KafkaBrokers, Topic: f.cfg.Topic, Table: f.table, Log: log}
	go func() {
		defer close(f.done)
		go f.src.Poll(ctx, f.cfg.PollInterval)
		if err := follower.Run(ctx); err != nil {
			log.Error("config topic", "err", err)
		}
	}()
	return nil
}

// Stop ends the poll and the topic reader.
func (f *Function) Stop(context.Context) error {
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
	return nil
}

// Ready once the topic has been read.
func (f *Function) Ready(context.Context) (bool, error) {
	if f.table == nil || !f.table.IsReady() {
		return false, errors.New("reading the config topic")
	}
	return true, nil
}

// Handle serves the webhook and the manual sync.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if f.src == nil {
		fn.WriteError(w, fn.Unavailable(errors.New("config-source is not started")))
		return
	}
	if r.Method != http.MethodPost {
		fn.WriteError(w, fn.WithStatus(http.StatusMethodNotAllowed, errors.New("POST a push event to "+WebhookPath+", or POST "+SyncPath)))
		return
	}
	switch r.URL.Path {
	case WebhookPath:
		f.webhook(w, r)
	case SyncPath:
		f.sync(w, r)
	default:
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, fmt.Errorf("no %s: POST %s or %s", r.URL.Path, WebhookPath, SyncPath)))
	}
}

func (f *Function) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fn.WriteError(w, fn.Invalidf("read body: %w", err))
		return
	}
	if err := gitsource.VerifyWebhook(f.cfg.WebhookSecret, r.Header, body); err != nil {
		webhooks.WithLabelValues("unauthorized").Inc()
		fn.WriteError(w, fn.WithStatus(http.StatusUnauthorized, err))
		return
	}
	p, ok, err := gitsource.ParsePush(r.Header, body, f.cfg.GitBranch)
	if err != nil {
		webhooks.WithLabelValues("invalid").Inc()
		fn.WriteError(w, fn.Invalid(err))
		return
	}
	if !ok {
		webhooks.WithLabelValues("ignored").Inc()
		fn.WriteJSON(w, http.StatusAccepted, map[string]string{"ignored": "not a push to refs/heads/" + f.cfg.GitBranch, "ref": p.Ref})
		return
	}
	webhooks.WithLabelValues("push").Inc()
	f.sync(w, r)
}

func (f *Function) sync(w http.ResponseWriter, r *http.Request) {
	res, err := f.src.Sync(r.Context())
	if err != nil {
		f.src.log.Warn("config sync failed", "err", err)
		fn.WriteError(w, err)
		return
	}
	fn.WriteJSON(w, http.StatusOK, res)
}
