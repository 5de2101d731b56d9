package batch

import "time"

// Env is the envconfig form of Config, embedded by the sinks under their
// own prefix (PGSINK_BATCH_MAX_ITEMS, CHSINK_BATCH_LINGER, ...).
type Env struct {
	MaxItems int           `envconfig:"BATCH_MAX_ITEMS" default:"5000" desc:"a batch is flushed when it holds this many rows"`
	Linger   time.Duration `envconfig:"BATCH_LINGER" default:"2ms" desc:"how long a batch waits for more rows after its first"`
	Flushers int           `envconfig:"BATCH_FLUSHERS" default:"2" desc:"batches written at once"`
	Timeout  time.Duration `envconfig:"BATCH_TIMEOUT" default:"30s" desc:"longest a batch write may take"`
}

// Config returns the batcher config.
func (e Env) Config() Config {
	return Config{MaxItems: e.MaxItems, Linger: e.Linger, Flushers: e.Flushers, Timeout: e.Timeout}
}
