package main

import (
	"fmt"
	"os"
	"time"
)

// debugging is BENCH_DEBUG: the engine's state every 2 s in drain runs, the
// latency timeline every 250 ms, and in the bench and broker processes a
// report of every stall (a 5 ms sleep that took over 40 ms) and the
// broker's GC trace.
var debugging bool

// stallDetector reports, with the wall time, each time who's process could
// not run a goroutine for over 40 ms.
func stallDetector(who string) (stop func()) {
	if !debugging {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			now := time.Now()
			if d := now.Sub(last); d > 40*time.Millisecond {
				fmt.Fprintf(os.Stderr, "%s stall in %s: %s\n", now.Format("15:04:05.000"), who, d.Round(time.Millisecond))
			}
			last = now
		}
	}()
	return func() { close(done) }
}
