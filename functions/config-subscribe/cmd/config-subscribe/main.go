// Command config-subscribe runs the config-subscribe function as a local
// process, the way func's wrapper runs it on Knative (PORT or
// LISTEN_ADDRESS, /health/*), plus /metrics.
package main

import (
	function "github.com/jobflow/jobflow/functions/config-subscribe"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() { fn.Main("config-subscribe", function.New()) }
