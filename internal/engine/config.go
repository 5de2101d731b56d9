// Package engine is the local engine behind `jobflow up`: it runs the
// manifests of triggers/, sinks/, brokers/ and adapters/ and the functions
// of functions/ on one machine, as Knative would run them on a cluster.
//
// It works in two steps, after knative.dev/eventing's adapters
// (configuration handed in, then Start): package plan turns the manifests
// into a resolved plan without starting anything, and the Engine (the
// runner) starts a plan layer by layer and stops it in reverse order.
package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/jobflow/jobflow/internal/autoscaler"
)

// Config of the engine. Every field is an environment variable; the README
// lists them (`jobflow env` prints them with their defaults).
type Config struct {
	Root      string `envconfig:"JOBFLOW_ROOT" default:"." desc:"repository root holding functions/, triggers/, sinks/, brokers/"`
	StateDir  string `envconfig:"JOBFLOW_DIR" default:".jobflow" desc:"where the engine keeps binaries, logs and the data of the servers it starts"`
	Namespace string `envconfig:"JOBFLOW_NAMESPACE" default:"jobflow" desc:"namespace the manifests are read for (KafkaSink paths, event sources)"`

	KafkaBrokers []string `envconfig:"KAFKA_BROKERS" desc:"comma-separated brokers of an existing Kafka; empty: start the embedded broker"`
	KafkaPort    int      `envconfig:"JOBFLOW_KAFKA_PORT" default:"9092" desc:"port of the embedded broker"`
	KafkaPersist bool     `envconfig:"JOBFLOW_KAFKA_PERSIST" default:"true" desc:"keep the embedded broker's data and offsets under JOBFLOW_DIR/kafka across restarts"`

	PostgresURL    string    `envconfig:"JOBFLOW_POSTGRES_URL" desc:"PostgreSQL URL of the jobs database; empty: start a server under JOBFLOW_DIR"`
	PostgresPort   int       `envconfig:"JOBFLOW_POSTGRES_PORT" default:"55432" desc:"port of the PostgreSQL server the engine starts"`
	Databases      Databases `envconfig:"JOBFLOW_DATABASES" desc:"PostgreSQL URLs of the databases the functions name (name:url,...); the others: database <name> on the PostgreSQL server, created if missing"`
	Adapters       bool      `envconfig:"JOBFLOW_ADAPTERS" default:"true" desc:"run the adapters of adapters/ (the CDC source)"`
	ClickHouseAddr string    `envconfig:"JOBFLOW_CLICKHOUSE_ADDR" desc:"host:port (native protocol) of ClickHouse; empty: start a server under JOBFLOW_DIR"`
	ClickHouseTCP  int       `envconfig:"JOBFLOW_CLICKHOUSE_TCP_PORT" default:"59000" desc:"native port of the ClickHouse server the engine starts"`
	ClickHouseHTTP int       `envconfig:"JOBFLOW_CLICKHOUSE_HTTP_PORT" default:"58123" desc:"HTTP port of the ClickHouse server the engine starts"`

	Ports       map[string]int `envconfig:"JOBFLOW_PORTS" desc:"fixed ports of functions (name:port,...) over func.yaml's jobflow.dev/local-port; the others get free ports"`
	IngressPort int            `envconfig:"JOBFLOW_INGRESS_PORT" default:"8070" desc:"port of the KafkaSink ingress (/<namespace>/<sink>)"`
	BrokerPort  int            `envconfig:"JOBFLOW_BROKER_PORT" default:"8071" desc:"port of the Kafka Broker ingress (/<namespace>/<broker>), Knative's kafka-broker-ingress"`
	AdminPort   int            `envconfig:"JOBFLOW_ADMIN_PORT" default:"8079" desc:"port of the engine's live console (/), /metrics and /status"`

	Prometheus     bool          `envconfig:"JOBFLOW_PROMETHEUS" default:"true" desc:"start a local Prometheus (Debian's prometheus) scraping the engine and every function instance; false: only keep JOBFLOW_DIR/prometheus/targets/jobflow.json current"`
	PrometheusPort int           `envconfig:"JOBFLOW_PROMETHEUS_PORT" default:"9090" desc:"port of the local Prometheus (UI and API)"`
	PrometheusBin  string        `envconfig:"JOBFLOW_PROMETHEUS_BIN" default:"prometheus" desc:"the prometheus binary"`
	ScrapeInterval time.Duration `envconfig:"JOBFLOW_SCRAPE_INTERVAL" default:"5s" desc:"how often the local Prometheus scrapes"`
	LagInterval    time.Duration `envconfig:"JOBFLOW_LAG_INTERVAL" default:"5s" desc:"how often the consumer lag of sources and triggers is measured (jobflow_consumer_lag)"`

	Traces     bool `envconfig:"JOBFLOW_TRACES" default:"true" desc:"keep recent traces in memory (GET /traces on the admin port): the engine's spans, and the functions' sent to its OTLP receiver (/v1/traces) unless OTEL_EXPORTER_OTLP_ENDPOINT names another"`
	TracesKept int  `envconfig:"JOBFLOW_TRACES_KEPT" default:"2000" desc:"how many of the latest traces are kept in memory"`

	Pprof bool `envconfig:"JOBFLOW_PPROF" default:"false" desc:"serve Go's profiler on /debug/pprof/ on the admin port (debugging, benchmarks)"`

	OneEventPerRequest bool `envconfig:"JOBFLOW_ONE_EVENT_PER_REQUEST" default:"false" desc:"true: ignore jobflow.dev/delivery.batch-size and deliver one event per request everywhere, as Knative does"`

	CommitInterval time.Duration `envconfig:"JOBFLOW_COMMIT_INTERVAL" default:"5s" desc:"how often sources commit finished offsets (Knative: 5s)"`
	StatusInterval time.Duration `envconfig:"JOBFLOW_STATUS_INTERVAL" default:"5s" desc:"how often the status lines are printed; 0: never"`
	StartTimeout   time.Duration `envconfig:"JOBFLOW_START_TIMEOUT" default:"120s" desc:"how long functions may take to become ready"`
	Functions      []string      `envconfig:"JOBFLOW_FUNCTIONS" desc:"run only these functions (comma-separated; empty: all in functions/); sources and bindings of the others are left out"`
	SkipBuild      bool          `envconfig:"JOBFLOW_SKIP_BUILD" default:"false" desc:"use the function binaries already in JOBFLOW_DIR/bin"`

	// Engine-wide overrides of the func.yaml scale settings (tests, demos);
	// unset: each function's annotations, else Knative's defaults.
	ScaleToZeroGrace *time.Duration `envconfig:"JOBFLOW_SCALE_TO_ZERO_GRACE" desc:"how long an idle function's last instance stays after a stable window without traffic (overrides func.yaml; default 30s, or jobflow.dev/scale-to-zero-grace-period / the retention period)"`
	AutoscaleWindow  time.Duration  `envconfig:"JOBFLOW_AUTOSCALE_WINDOW" desc:"stable window of every function's autoscaler (overrides autoscaling.knative.dev/window; default 60s; the panic window is its panic-window-percentage)"`
	AutoscaleTick    time.Duration  `envconfig:"JOBFLOW_AUTOSCALE_TICK" desc:"how often autoscalers decide (default 2s, as Knative's)"`
}

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("engine config: %w", err)
	}
	return c, nil
}

// Usage prints every setting with its default.
func Usage() error {
	var c Config
	return envconfig.Usage("", &c)
}

// Databases maps a database name (a func.yaml secret key <name>-url) to
// its URL; in the environment name:url,... as JOBFLOW_PORTS (the name
// ends at the first colon, the URL keeps its own).
type Databases map[string]string

// Decode reads name:url pairs (envconfig.Decoder).
func (d *Databases) Decode(v string) error {
	m := Databases{}
	for _, pair := range strings.Split(v, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		name, url, ok := strings.Cut(pair, ":")
		if !ok || name == "" || url == "" {
			return fmt.Errorf("JOBFLOW_DATABASES: %q: want name:url", pair)
		}
		m[name] = url
	}
	*d = m
	return nil
}

// autoscalerOverrides are the engine-wide overrides of func.yaml's scale
// settings.
func autoscalerOverrides(c Config) autoscaler.Overrides {
	return autoscaler.Overrides{StableWindow: c.AutoscaleWindow, ScaleToZeroGrace: c.ScaleToZeroGrace, Tick: c.AutoscaleTick}
}
