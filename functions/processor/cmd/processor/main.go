// Command processor runs the processor function as a local process, the way func's
// wrapper runs it on Knative (PORT or LISTEN_ADDRESS, K_SINK, /health/*),
// plus /metrics.
package main

import (
	function "github.com/jobflow/jobflow/functions/processor"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() { fn.Main("processor", function.New()) }
