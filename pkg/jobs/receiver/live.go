package receiver

import (
	"fmt"
	"time"

	"github.com/jobflow/jobflow/pkg/config/client"
)

// The live configuration keys of the receiver's limits (config/jobs/receiver).
const (
	LiveMaxSleep    = "jobs/receiver/max-sleep"
	LiveMaxDataSize = "jobs/receiver/max-data-size"
	// LiveKeys is what the receiver subscribes to.
	LiveKeys = "jobs/receiver/*"
)

// Live is the receiver's limits as live configuration, the environment's
// values (RECEIVER_MAX_SLEEP, RECEIVER_MAX_DATA_SIZE) their defaults.
type Live struct {
	client      *client.Client
	maxSleep    *client.Var[time.Duration]
	maxDataSize *client.Var[int64]
	running     *client.Running
}

// NewLive binds the limits to c (not yet running: Start).
func NewLive(c *client.Client, cfg Config) *Live {
	return &Live{
		client: c,
		maxSleep: client.Bind(c, LiveMaxSleep, cfg.MaxSleep, func(d time.Duration) error {
			if d < 0 {
				return fmt.Errorf("max-sleep %s: want 0 or more", d)
			}
			return nil
		}),
		maxDataSize: client.Bind(c, LiveMaxDataSize, cfg.MaxDataSize, func(n int64) error {
			if n < 0 {
				return fmt.Errorf("max-data-size %d: want 0 or more", n)
			}
			return nil
		}),
	}
}

// Start follows the configuration service until Stop.
func (l *Live) Start() { l.running = l.client.Start() }

// Stop ends the subscription; a nil Live does nothing.
func (l *Live) Stop() {
	if l != nil {
		l.running.Stop()
	}
}

// Settled: the first values arrived, or wait passed since Start; a nil
// Live (no live limits) is settled.
func (l *Live) Settled(wait time.Duration) bool { return l == nil || l.running.Settled(wait) }

// limits are the limits in force now: the live values, else cfg's.
func (l *Live) limits(cfg Config) (maxSleep time.Duration, maxDataSize int64) {
	if l == nil {
		return cfg.MaxSleep, cfg.MaxDataSize
	}
	return l.maxSleep.Load(), l.maxDataSize.Load()
}
