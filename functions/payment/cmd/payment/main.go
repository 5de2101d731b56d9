// Command payment runs the payment function as a local process, the way func's
// wrapper runs it on Knative (PORT or LISTEN_ADDRESS, /health/*), plus
// /metrics.
package main

import (
	function "github.com/jobflow/jobflow/functions/payment"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() { fn.Main("payment", function.New()) }
