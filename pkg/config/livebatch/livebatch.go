// Package livebatch drives a sink's batch size and linger from live
// configuration: a sink.Tuner whose keys are <prefix>/batch-max-items and
// <prefix>/batch-linger, the environment's <NAME>_BATCH_MAX_ITEMS and
// <NAME>_BATCH_LINGER their defaults. Without JOBFLOW_CONFIG_URL it never
// connects and the environment's values stay.
//
//	sink.New("pgsink", Batch, open, decode).WithTuner(livebatch.New("pgsink", "jobs/pgsink"))
package livebatch

import (
	"fmt"
	"os"
	"time"

	"github.com/jobflow/jobflow/pkg/config/client"
	"github.com/jobflow/jobflow/pkg/runtime/batch"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// The keys under a sink's prefix.
const (
	MaxItemsKey = "batch-max-items"
	LingerKey   = "batch-linger"
)

// MaxLinger bounds a live linger: each delivery of a batch waits that
// long, and a longer wait would outlast the callers' patience.
const MaxLinger = time.Minute

// Tuner is a sink's batch size and linger as live configuration.
type Tuner struct {
	function, prefix string
	running          *client.Running
}

// New returns the tuner of function's sink (named in its logs), following
// the keys under prefix (e.g. "jobs/pgsink").
func New(function, prefix string) *Tuner { return &Tuner{function: function, prefix: prefix} }

// Keys are the tuner's keys.
func (t *Tuner) Keys() (maxItems, linger string) {
	return t.prefix + "/" + MaxItemsKey, t.prefix + "/" + LingerKey
}

// Start binds the keys, env's MaxItems and Linger their defaults, and
// subscribes (JOBFLOW_CONFIG_URL, JOBFLOW_CONFIG_CACHE) until Stop. A
// max-items under 1 or a linger outside 0 to MaxLinger is refused (the
// previous value stays).
func (t *Tuner) Start(env batch.Config) (func() batch.Tuning, error) {
	c, err := client.FromEnv(fn.NewLogger(os.Getenv("LOG_LEVEL"), t.function), t.prefix+"/*")
	if err != nil {
		return nil, err
	}
	maxItemsKey, lingerKey := t.Keys()
	maxItems := client.Bind(c, maxItemsKey, env.MaxItems, func(n int) error {
		if n < 1 {
			return fmt.Errorf("%s %d: want 1 or more", MaxItemsKey, n)
		}
		return nil
	})
	linger := client.Bind(c, lingerKey, env.Linger, func(d time.Duration) error {
		if d < 0 || d > MaxLinger {
			return fmt.Errorf("%s %s: want 0 to %s", LingerKey, d, MaxLinger)
		}
		return nil
	})
	t.running = c.Start()
	return func() batch.Tuning { return batch.Tuning{MaxItems: maxItems.Load(), Linger: linger.Load()} }, nil
}

// Stop ends the subscription.
func (t *Tuner) Stop() { t.running.Stop() }
