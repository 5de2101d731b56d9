package receiver

import (
	"github.com/jobflow/jobflow/pkg/config/client"
	"github.com/jobflow/jobflow/pkg/jobs/limits"
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
type Live = limits.Live

// NewLive binds the limits to c (not yet running: Start).
func NewLive(c *client.Client, cfg Config) *Live {
	return limits.New(c, "jobs/receiver", cfg.MaxSleep, cfg.MaxDataSize)
}
