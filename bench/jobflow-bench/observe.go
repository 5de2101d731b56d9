package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// cpuTimes are the CPU seconds (user+system) of this process (engine,
// KafkaSource dispatcher) and of its ended children (functions).
func cpuTimes() (self, children float64) {
	var ru syscall.Rusage
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = tv(ru.Utime) + tv(ru.Stime)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	children = tv(ru.Utime) + tv(ru.Stime)
	return
}

func perK(sec float64, events int) float64 {
	if events == 0 {
		return 0
	}
	return sec * 1000 * 1000 / float64(events)
}

// watch prints the function's scale and its source's state every 2 s
// when BENCH_DEBUG is set (debug.go).
func (b *bench) watch(eng *engineRun, function string) func() {
	if !debugging {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			st := eng.eng.Status()
			fs, _ := json.Marshal(st.Functions[function])
			h := deliveryHistogram(function + "-source")
			b.say("debug %s: %s source %+v delivery p50 %s p99 %s", function, fs, st.Sources[function+"-source"], ms(h.quantile(0.5)), ms(h.quantile(0.99)))
		}
	}()
	return func() { close(done) }
}

// timeline prints, every second of a latency run (250 ms with
// BENCH_DEBUG), the records acknowledged in it with their latency, what is
// in flight, and the records produced with the slowest send-to-broker
// acknowledgement, so that a p99 can be told from a stall and a stall
// placed.
func (b *bench) timeline(eng *engineRun, fn string, p *producer) func() {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		step := time.Second
		if debugging {
			step = 250 * time.Millisecond
		}
		t := time.NewTicker(step)
		defer t.Stop()
		prev, prevD := recordHistogram(fn+"-source"), deliveryHistogram(fn+"-source")
		prevW := map[string]histogram{}
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case <-t.C:
			}
			cur, curD := recordHistogram(fn+"-source"), deliveryHistogram(fn+"-source")
			h, d := cur.since(prev), curD.since(prevD)
			prev, prevD = cur, curD
			st := eng.eng.Status().Sources[fn+"-source"]
			acks := p.takeAcks()
			var ackMax time.Duration
			for _, a := range acks {
				ackMax = max(ackMax, a)
			}
			writes := ""
			if debugging {
				writes = b.sinkWrites(eng, fn, prevW)
			}
			b.say("  %s %5.2fs: %6d acknowledged, p50 %s, p99 %s, max ≤ %s (the HTTP delivery: p99 %s); in flight %d; produced %d, slowest %s%s", fn, float64(i)*step.Seconds(), h.count,
				ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.quantile(1)), ms(d.quantile(0.99)), st.InFlight, len(acks), ms(ackMax), writes)
		}
	}()
	return func() { close(done); <-stopped }
}

// sinkWrites tells the writes each instance of the sink fn made since the
// last call (from its /metrics: jobflow_sink_batch_duration_seconds and
// jobflow_sink_batch_size); prev keeps the last snapshots.
func (b *bench) sinkWrites(eng *engineRun, fn string, prev map[string]histogram) string {
	sc := eng.eng.Status().Functions[fn].Scale
	if sc == nil {
		return ""
	}
	var out strings.Builder
	for _, in := range sc.PerInstance {
		d := instanceHistogram(in.URL, "jobflow_sink_batch_duration_seconds", "function", fn)
		n := instanceHistogram(in.URL, "jobflow_sink_batch_size", "function", fn)
		dd, nd := d.since(prev["d"+in.URL]), n.since(prev["n"+in.URL])
		prev["d"+in.URL], prev["n"+in.URL] = d, n
		if dd.count > 0 {
			fmt.Fprintf(&out, "; instance %d: %d writes of %.0f rows, p50 %s, p99 %s", in.Slot, dd.count, nd.sum/float64(max(nd.count, 1)),
				ms(dd.quantile(0.5)), ms(dd.quantile(0.99)))
		}
	}
	return out.String()
}

// writesNote tells how many writes the running instances of the sink fn
// made and their mean size (from their /metrics).
func writesNote(eng *engineRun, fn string) string {
	sc := eng.eng.Status().Functions[fn].Scale
	if sc == nil {
		return ""
	}
	var writes, rows float64
	for _, in := range sc.PerInstance {
		n := instanceHistogram(in.URL, "jobflow_sink_batch_size", "function", fn)
		writes += float64(n.count)
		rows += n.sum
	}
	if writes == 0 {
		return ""
	}
	return fmt.Sprintf("; %.0f writes of %.0f rows from %d instances", writes, rows/writes, len(sc.PerInstance))
}

// scaleNote tells how the function's pool moved during a run.
func scaleNote(eng *engineRun, fn string) string {
	sc := eng.eng.Status().Functions[fn].Scale
	if sc == nil {
		return ""
	}
	return fmt.Sprintf("; instances %d, cold starts %d, requests held %d", sc.Instances, sc.ColdStarts, sc.HeldTotal)
}
