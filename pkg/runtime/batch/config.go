package batch

import "time"

// Env is the envconfig form of Config, embedded by each sink under its own
// prefix (PGSINK_BATCH_MAX_ITEMS, CHSINK_BATCH_LINGER, ...). A variable
// left unset takes the sink's default (see Config), since the right batch
// differs by database: the README lists each sink's defaults.
type Env struct {
	MaxItems *int           `envconfig:"BATCH_MAX_ITEMS" desc:"a write takes at most this many rows (a delivered batch is never split)"`
	Linger   *time.Duration `envconfig:"BATCH_LINGER" desc:"how long a batch waits for more rows after its first"`
	Flushers *int           `envconfig:"BATCH_FLUSHERS" desc:"writes at once"`
	Timeout  *time.Duration `envconfig:"BATCH_TIMEOUT" desc:"longest a write may take"`
	Interval *time.Duration `envconfig:"BATCH_INTERVAL" desc:"least time between the starts of two writes (rows arriving meanwhile join the next)"`
}

// Defaults suit a PostgreSQL writer (the counter).
var Defaults = Config{MaxItems: 5000, Linger: 2 * time.Millisecond, Flushers: 2, Timeout: 30 * time.Second}

// Config returns def with the variables that were set.
func (e Env) Config(def Config) Config {
	c := def
	if e.MaxItems != nil {
		c.MaxItems = *e.MaxItems
	}
	if e.Linger != nil {
		c.Linger = *e.Linger
	}
	if e.Flushers != nil {
		c.Flushers = *e.Flushers
	}
	if e.Timeout != nil {
		c.Timeout = *e.Timeout
	}
	if e.Interval != nil {
		c.Interval = *e.Interval
	}
	return c
}
