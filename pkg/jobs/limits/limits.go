// Package limits is a job's limits — how long it may sleep, how much data
// it may ask for — as live configuration: the receiver and the processor
// each follow their own keys (<prefix>/max-sleep, <prefix>/max-data-size),
// the environment's values their defaults.
package limits

import (
	"fmt"
	"time"

	"github.com/jobflow/jobflow/pkg/config/client"
)

// Live is the limits bound to a configuration client. A nil Live is no
// live limits: the defaults hold.
type Live struct {
	client      *client.Client
	maxSleep    *client.Var[time.Duration]
	maxDataSize *client.Var[int64]
	running     *client.Running
}

// New binds prefix's limits to c, with defaults maxSleep and maxDataSize
// (not yet running: Start). A negative value is refused.
func New(c *client.Client, prefix string, maxSleep time.Duration, maxDataSize int64) *Live {
	return &Live{
		client: c,
		maxSleep: client.Bind(c, prefix+"/max-sleep", maxSleep, func(d time.Duration) error {
			if d < 0 {
				return fmt.Errorf("max-sleep %s: want 0 or more", d)
			}
			return nil
		}),
		maxDataSize: client.Bind(c, prefix+"/max-data-size", maxDataSize, func(n int64) error {
			if n < 0 {
				return fmt.Errorf("max-data-size %d: want 0 or more", n)
			}
			return nil
		}),
	}
}

// Start follows the configuration service until Stop; a nil Live does
// nothing.
func (l *Live) Start() {
	if l != nil {
		l.running = l.client.Start()
	}
}

// Stop ends the subscription; a nil Live does nothing.
func (l *Live) Stop() {
	if l != nil {
		l.running.Stop()
	}
}

// Settled: the first values arrived, or wait passed since Start; a nil
// Live is settled.
func (l *Live) Settled(wait time.Duration) bool { return l == nil || l.running.Settled(wait) }

// Load is the limits in force now: the live values, else (a nil Live) the
// given defaults.
func (l *Live) Load(maxSleep time.Duration, maxDataSize int64) (time.Duration, int64) {
	if l == nil {
		return maxSleep, maxDataSize
	}
	return l.maxSleep.Load(), l.maxDataSize.Load()
}
