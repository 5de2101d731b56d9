// Command converter runs the converter function as a local process, the way func's
// wrapper runs it on Knative (PORT or LISTEN_ADDRESS, K_SINK, /health/*),
// plus /metrics.
package main

import (
	function "github.com/jobflow/jobflow/functions/converter"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() { fn.Main("converter", function.New()) }
