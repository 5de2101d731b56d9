// Package function is config-subscribe: it materialises the config-changes
// topic and serves subscriptions to keys, GET /subscribe (Server-Sent
// Events) and /ws (WebSocket), and a page that shows a key live (GET /).
package function

import "github.com/jobflow/jobflow/pkg/config/subscribe"

// Function is the instanced HTTP function.
type Function struct{ *subscribe.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{subscribe.NewFunction()} }
