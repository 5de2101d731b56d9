package scaler

// Status of a pool.
type Status struct {
	Instances   int     `json:"instances"` // ready and serving
	Starting    int     `json:"starting"`
	Draining    int     `json:"draining"`
	Desired     int     `json:"desired"`
	MinScale    int     `json:"min_scale"`
	MaxScale    int     `json:"max_scale"`
	Metric      string  `json:"metric"`
	Target      float64 `json:"target_per_instance"`
	StableValue float64 `json:"stable_value"`
	PanicValue  float64 `json:"panic_value"`
	Panic       bool    `json:"panic"`
	Held        int64   `json:"held"`       // requests waiting for an instance now
	HeldTotal   int64   `json:"held_total"` // requests that had to wait
	InFlight    int64   `json:"in_flight"`  // requests at instances now
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"` // answered by the activator itself with 5xx
	ColdStarts  int64   `json:"cold_starts"`
	// Cold start = instance process start to its first ready answer.
	ColdStartLastMs float64          `json:"cold_start_last_ms"`
	ColdStartP50Ms  float64          `json:"cold_start_p50_ms"`
	ColdStartP99Ms  float64          `json:"cold_start_p99_ms"`
	PerInstance     []InstanceStatus `json:"per_instance"`
}

// InstanceStatus of one instance.
type InstanceStatus struct {
	Slot        int     `json:"slot"`
	URL         string  `json:"url"`
	PID         int     `json:"pid"`
	Ready       bool    `json:"ready"`
	Draining    bool    `json:"draining"`
	InFlight    int64   `json:"in_flight"`
	Requests    int64   `json:"requests"`
	ColdStartMs float64 `json:"cold_start_ms"`
	RSSKB       int64   `json:"rss_kb"`
	AgeSeconds  float64 `json:"age_s"`
}
