// Command receiver runs the receiver function as a local process, the way func's
// wrapper runs it on Knative (PORT or LISTEN_ADDRESS, K_SINK, /health/*),
// plus /metrics.
package main

import (
	function "github.com/jobflow/jobflow/functions/receiver"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() { fn.Main("receiver", function.New()) }
