// Command stock runs the stock function as a local process, the way func's
// wrapper runs it on Knative (PORT or LISTEN_ADDRESS, /health/*), plus
// /metrics.
package main

import (
	function "github.com/jobflow/jobflow/functions/stock"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

func main() { fn.Main("stock", function.New()) }
