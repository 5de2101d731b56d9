// Command config-source runs the config-source function as a local process,
// the way func's wrapper runs it on Knative (PORT or LISTEN_ADDRESS, K_SINK,
// /health/*), plus /metrics.
package main

import (
	function "github.com/jobflow/jobflow/functions/config-source"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() { fn.Main("config-source", function.New()) }
