package subscribe

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jobflow/jobflow/pkg/config/store"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/metrics"
)

// Config of config-subscribe; env vars CONFIG_*.
type Config struct {
	KafkaBrokers []string      `envconfig:"KAFKA_BROKERS" required:"true" desc:"Kafka bootstrap servers of the config topic"`
	Topic        string        `envconfig:"TOPIC" default:"config-changes" desc:"the compacted topic of changes (one partition)"`
	Retain       int           `envconfig:"RETAIN" default:"10000" desc:"changes kept for subscribers that resume; one that missed more gets a reset and a snapshot"`
	Heartbeat    time.Duration `envconfig:"HEARTBEAT" default:"15s" desc:"keep-alive message on an idle subscription (proxies close silent connections)"`
	MaxStream    time.Duration `envconfig:"MAX_STREAM" default:"240s" desc:"a subscription ends after this and its client resumes: keep it under Knative's request timeout (300s by default)"`
	WriteTimeout time.Duration `envconfig:"WRITE_TIMEOUT" default:"10s" desc:"a subscriber whose write blocks this long is disconnected (it resumes when it comes back)"`
	CatchUp      time.Duration `envconfig:"CATCH_UP" default:"2s" desc:"how long a resume from a position this instance has not read yet waits for it (instances read the topic independently)"`
	AnyOrigin    bool          `envconfig:"WS_ANY_ORIGIN" default:"false" desc:"accept WebSocket connections from pages of any origin"`
	ParkIdle     bool          `envconfig:"PARK_IDLE" default:"true" desc:"hold SSE subscribers between changes as a socket and a cursor, without a goroutine each (about 2 KiB instead of 40); false: net/http's goroutine per subscriber"`
}

var (
	subscribers = metrics.NewGauge("config_subscribers", "Open subscriptions, by transport.", "transport")
	sent        = metrics.NewCounter("config_messages_sent_total", "Messages written to subscribers.").WithLabelValues()
	resets      = metrics.NewCounter("config_resets_total", "Subscriptions resynchronised with a reset and a snapshot.").WithLabelValues()
	applied     = metrics.NewCounter("config_records_applied_total", "Records of the config topic applied, by whether they changed a key.", "visible")
	released    = metrics.NewCounter("config_subscriber_slow_writes_total", "Writes to a parked SSE subscriber that its socket did not take at once, finished in a goroutine of their own.").WithLabelValues()
	parkedGauge = metrics.NewGauge("config_subscribers_parked", "SSE subscribers held between changes without a goroutine of their own.").WithLabelValues()
)

//go:embed page.html
var page []byte

// Service serves subscriptions from a table.
type Service struct {
	cfg   Config
	table *store.Table

	hub     *hub // nil: a goroutine per subscriber
	hubOnce sync.Once
	cancel  context.CancelFunc
	hubDone chan struct{}
}

// NewService serves subscriptions from table (which something else fills).
// Close ends the subscriptions it holds.
func NewService(cfg Config, table *store.Table) *Service {
	s := &Service{cfg: cfg, table: table, hubDone: make(chan struct{})}
	if cfg.ParkIdle {
		var ctx context.Context
		ctx, s.cancel = context.WithCancel(context.Background())
		s.hub = newHub(ctx, table, s.opts(), cfg.WriteTimeout)
	}
	return s
}

// startHub runs the hub from the first parked subscriber on.
func (s *Service) startHub() {
	s.hubOnce.Do(func() {
		go func() { defer close(s.hubDone); s.hub.run() }()
	})
}

// Close closes the parked subscribers' connections (net/http no longer
// tracks them) and stops the hub.
func (s *Service) Close() {
	if s.hub == nil {
		return
	}
	s.cancel()
	s.hubOnce.Do(func() { close(s.hubDone) }) // never started
	<-s.hubDone
}

func (s *Service) opts() Options {
	return Options{Heartbeat: s.cfg.Heartbeat, MaxStream: s.cfg.MaxStream, CatchUp: s.cfg.CatchUp}
}

// ServeHTTP routes /subscribe, /ws, /values and the page.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/subscribe":
		s.ServeSSE(w, r)
	case "/ws":
		s.ServeWS(w, r)
	case "/values":
		s.serveValues(w, r)
	case "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	default:
		fn.WriteError(w, fn.WithStatus(http.StatusNotFound, errors.New("no such path: /subscribe, /ws, /values or / (the page)")))
	}
}

// serveValues answers the current values once (what a polling client asks).
func (s *Service) serveValues(w http.ResponseWriter, r *http.Request) {
	m, _, _, err := s.request(r, "")
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	entries, head := s.table.Snapshot(m.Match)
	w.Header().Set("ETag", strconv.FormatInt(head, 10))
	fn.WriteJSON(w, http.StatusOK, map[string]any{"seq": head, "values": entries})
}

// Function is config-subscribe as an HTTP function.
type Function struct {
	*Service
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFunction returns an unstarted config-subscribe.
func NewFunction() *Function { return &Function{} }

// Start reads CONFIG_* and follows the topic.
func (f *Function) Start(context.Context, map[string]string) error {
	var cfg Config
	if err := fn.Process("CONFIG", &cfg); err != nil {
		return err
	}
	if len(cfg.KafkaBrokers) == 0 || cfg.KafkaBrokers[0] == "" {
		return errors.New("config-subscribe needs CONFIG_KAFKA_BROKERS: the Kafka of the config topic")
	}
	table := store.NewTable(cfg.Retain)
	f.Service = NewService(cfg, table)
	log := fn.NewLogger(os.Getenv("LOG_LEVEL"), "config-subscribe")
	follower := &store.Follower{Brokers: cfg.KafkaBrokers, Topic: cfg.Topic, Table: table, Log: log,
		Applied: func(visible bool) { applied.WithLabelValues(strconv.FormatBool(visible)).Inc() }}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		if err := follower.Run(ctx); err != nil {
			log.Error("config topic", "err", err)
		}
	}()
	return nil
}

// Stop ends the subscriptions and the topic reader.
func (f *Function) Stop(context.Context) error {
	if f.Service != nil {
		f.Service.Close()
	}
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
	return nil
}

// Ready once the topic has been read up to where it stood at start.
func (f *Function) Ready(context.Context) (bool, error) {
	if f.Service == nil || !f.table.IsReady() {
		return false, errors.New("reading the config topic")
	}
	return true, nil
}

// Handle serves the function's paths.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if f.Service == nil {
		fn.WriteError(w, fn.Unavailable(errors.New("config-subscribe is not started")))
		return
	}
	f.ServeHTTP(w, r)
}
