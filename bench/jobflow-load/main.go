// Command jobflow-load measures a running local engine (`jobflow up`, see
// scripts/load.sh and `make load`): cold starts and idle RSS of every
// function (each woken from zero through its activator), the activator's
// overhead on a warm request, then a `hey` load on the receiver followed by
// idling until every function is back at zero. It writes a Markdown report,
// a CSV of instances per function over time and a PNG plot of it next to
// the offered load.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/scaler"
)

type options struct {
	admin, target, hey, body, out, note string
	conc                                int
	dur, idleTimeout                    time.Duration
	colds, warm                         int
}

func main() {
	var o options
	flag.StringVar(&o.admin, "admin", "http://127.0.0.1:8079", "engine admin URL (/status)")
	flag.StringVar(&o.target, "target", "http://127.0.0.1:8080/create/job", "URL hey posts jobs to")
	flag.StringVar(&o.hey, "hey", "hey", "hey binary")
	flag.StringVar(&o.body, "body", `{"sleep":100,"data_size":1024}`, "job posted by hey")
	flag.IntVar(&o.conc, "c", 50, "concurrent hey clients")
	flag.DurationVar(&o.dur, "d", 60*time.Second, "load duration")
	flag.IntVar(&o.colds, "coldstarts", 5, "cold starts measured per function")
	flag.IntVar(&o.warm, "warm", 2000, "warm requests for the activator overhead")
	flag.DurationVar(&o.idleTimeout, "idle-timeout", 5*time.Minute, "how long to wait for scale to zero")
	flag.StringVar(&o.out, "out", ".jobflow/load", "directory of the report, CSV and PNG")
	flag.StringVar(&o.note, "note", "", "line added to the report (engine settings)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func status() (engine.Status, error) { return statusOf(opts.admin) }

var opts options

func statusOf(admin string) (engine.Status, error) {
	var st engine.Status
	resp, err := http.Get(admin + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func scaled(st engine.Status) []string {
	var names []string
	for n, f := range st.Functions {
		if f.Scale != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func total(s *scaler.Status) int { return s.Instances + s.Starting + s.Draining }

// waitZero waits until fn has no instance at all.
func waitZero(fn string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := status()
		if err == nil && total(st.Functions[fn].Scale) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not at zero after %s", fn, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type coldResult struct {
	fn           string
	cold, client []time.Duration // process start to ready; client-side held request
	rssKB        []int64
	err          error
}

// coldStarts wakes fn from zero n times through its activator.
func coldStarts(fn, url string, n int, timeout time.Duration) coldResult {
	r := coldResult{fn: fn}
	for range n {
		if r.err = waitZero(fn, timeout); r.err != nil {
			return r
		}
		before, _ := status()
		prev := before.Functions[fn].Scale.ColdStarts
		start := time.Now()
		resp, err := http.Get(url + "/health/readiness")
		if err != nil {
			r.err = err
			return r
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.client = append(r.client, time.Since(start))
		if resp.StatusCode != 200 {
			r.err = fmt.Errorf("%s: readiness through the activator: %s", fn, resp.Status)
			return r
		}
		time.Sleep(500 * time.Millisecond) // idle a moment, then read RSS
		st, err := status()
		if err != nil {
			r.err = err
			return r
		}
		sc := st.Functions[fn].Scale
		if sc.ColdStarts != prev+1 {
			r.err = fmt.Errorf("%s: %d cold starts for one wake-up", fn, sc.ColdStarts-prev)
			return r
		}
		r.cold = append(r.cold, time.Duration(sc.ColdStartLastMs*float64(time.Millisecond)))
		for _, in := range sc.PerInstance {
			if in.Ready && in.RSSKB > 0 {
				r.rssKB = append(r.rssKB, in.RSSKB)
			}
		}
	}
	return r
}

type overhead struct {
	n                                    int
	viaP50, viaP99, directP50, directP99 time.Duration
}

// warmOverhead times GET /health/readiness through the activator and
// straight to the instance, interleaved, on a warm instance of fn.
func warmOverhead(fn, url string, n int) (overhead, error) {
	var o overhead
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(u string) (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(u)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, errors.New(resp.Status)
		}
		return time.Since(start), nil
	}
	if _, err := get(url + "/health/readiness"); err != nil { // wake
		return o, err
	}
	st, err := status()
	if err != nil {
		return o, err
	}
	direct := ""
	for _, in := range st.Functions[fn].Scale.PerInstance {
		if in.Ready && !in.Draining {
			direct = in.URL
		}
	}
	if direct == "" {
		return o, fmt.Errorf("%s: no ready instance", fn)
	}
	var via, dir []time.Duration
	for i := range n + 100 {
		a, err := get(url + "/health/readiness")
		if err != nil {
			return o, err
		}
		b, err := get(direct + "/health/readiness")
		if err != nil {
			return o, err
		}
		if i >= 100 { // warm-up
			via, dir = append(via, a), append(dir, b)
		}
	}
	slices.Sort(via)
	slices.Sort(dir)
	return overhead{n, scaler.Percentile(via, 50), scaler.Percentile(via, 99), scaler.Percentile(dir, 50), scaler.Percentile(dir, 99)}, nil
}

// sample is one observation of the engine during the load.
type sample struct {
	t         float64 // seconds since the load started
	instances map[string]int
	held      int64
	offered   float64 // requests/s reaching the receiver's activator
}

func sampler(ctx context.Context, fns []string, start time.Time, out *[]sample, mu *sync.Mutex) {
	var prevReq int64 = -1
	prevT := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := status()
		now := time.Now()
		if err == nil {
			s := sample{t: now.Sub(start).Seconds(), instances: map[string]int{}}
			for _, f := range fns {
				sc := st.Functions[f].Scale
				s.instances[f] = sc.Instances
				s.held += sc.Held
			}
			if r := st.Functions["receiver"].Scale; r != nil {
				if prevReq >= 0 {
					s.offered = float64(r.Requests-prevReq) / now.Sub(prevT).Seconds()
				}
				prevReq, prevT = r.Requests, now
			}
			mu.Lock()
			*out = append(*out, s)
			mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

type heyResult struct {
	rps, p50, p99, slowest float64
	codes                  map[string]int
	errors                 []string
	raw                    string
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reSlowest = regexp.MustCompile(`Slowest:\s+([0-9.]+) secs`)
	rePct     = regexp.MustCompile(`(\d+)%+ in ([0-9.]+) secs`)
	reCode    = regexp.MustCompile(`\[(\d+)\]\s+(\d+) responses`)
)

func parseHey(out string) heyResult {
	h := heyResult{codes: map[string]int{}, raw: out}
	if m := reRPS.FindStringSubmatch(out); m != nil {
		h.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reSlowest.FindStringSubmatch(out); m != nil {
		h.slowest, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[1] {
		case "50":
			h.p50 = v
		case "99":
			h.p99 = v
		}
	}
	for _, m := range reCode.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		h.codes[m[1]] += n
	}
	if i := strings.Index(out, "Error distribution:"); i >= 0 {
		for _, l := range strings.Split(strings.TrimSpace(out[i+len("Error distribution:"):]), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				h.errors = append(h.errors, l)
			}
		}
	}
	return h
}

// waitForEngine waits up to ten minutes for the engine's /status.
func waitForEngine(o options) (engine.Status, error) {
	for i := 0; ; i++ {
		st, err := status()
		if err == nil {
			return st, nil
		}
		if i > 600 {
			return st, fmt.Errorf("engine admin %s: %w", o.admin, err)
		}
		time.Sleep(time.Second)
	}
}

// coldPhase measures o.colds cold starts of every function, all in parallel.
func coldPhase(o options, st engine.Status, fns []string) ([]coldResult, error) {
	log.Printf("cold starts: %d per function (each waits for scale to zero first)", o.colds)
	results := make([]coldResult, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Go(func() { results[i] = coldStarts(f, st.Functions[f].URL, o.colds, o.idleTimeout) })
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
	}
	return results, nil
}

func run(o options) error {
	opts = o
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	st, err := waitForEngine(o)
	if err != nil {
		return err
	}
	fns := scaled(st)
	log.Printf("functions: %s", strings.Join(fns, ", "))

	// 1. Cold starts and idle RSS, every function in parallel.
	results, err := coldPhase(o, st, fns)
	if err != nil {
		return err
	}

	// 2. Activator overhead on a warm request.
	log.Printf("activator overhead: %d warm requests each way", o.warm)
	ov, err := warmOverhead("receiver", st.Functions["receiver"].URL, o.warm)
	if err != nil {
		return fmt.Errorf("overhead: %w", err)
	}
	for _, f := range fns { // the load starts from zero
		if err := waitZero(f, o.idleTimeout); err != nil {
			return err
		}
	}

	// 3. Load, then idle until every function is back at zero.
	log.Printf("load: hey -c %d -z %s POST %s", o.conc, o.dur, o.target)
	var samples []sample
	var mu sync.Mutex
	ctx, stop := context.WithCancel(context.Background())
	start := time.Now()
	done := make(chan struct{})
	go func() { sampler(ctx, fns, start, &samples, &mu); close(done) }()
	cmd := exec.Command(o.hey, "-c", strconv.Itoa(o.conc), "-z", o.dur.String(), "-m", "POST",
		"-T", "application/json", "-d", o.body, o.target)
	var heyOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &heyOut, &heyOut
	if err := cmd.Run(); err != nil {
		stop()
		return fmt.Errorf("hey: %w\n%s", err, heyOut.String())
	}
	loadEnd := time.Since(start).Seconds()
	h := parseHey(heyOut.String())
	log.Printf("load done: %.0f req/s; idling until every function is at zero", h.rps)
	var zeroErr error
	for _, f := range fns {
		if err := waitZero(f, o.idleTimeout); err != nil {
			zeroErr = err
			break
		}
	}
	zeroAt := time.Since(start).Seconds()
	time.Sleep(2 * time.Second)
	stop()
	<-done
	final, _ := status()

	if err := writeCSV(filepath.Join(o.out, "load.csv"), fns, samples); err != nil {
		return err
	}
	if err := writePlot(filepath.Join(o.out, "load.png"), fns, samples, loadEnd, o); err != nil {
		return err
	}
	rep := report(o, fns, results, ov, h, samples, loadEnd, zeroAt, zeroErr, final)
	if err := os.WriteFile(filepath.Join(o.out, "load-report.md"), []byte(rep), 0o644); err != nil {
		return err
	}
	fmt.Print(rep)
	log.Printf("wrote %s/load-report.md, load.csv, load.png", o.out)
	return zeroErr
}

func writeCSV(path string, fns []string, samples []sample) error {
	var b strings.Builder
	b.WriteString("t_s,offered_rps,held," + strings.Join(fns, ",") + "\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%.2f,%.1f,%d", s.t, s.offered, s.held)
		for _, f := range fns {
			fmt.Fprintf(&b, ",%d", s.instances[f])
		}
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func msf(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func report(o options, fns []string, colds []coldResult, ov overhead, h heyResult, samples []sample,
	loadEnd, zeroAt float64, zeroErr error, final engine.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Load report (%s, %d CPUs)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU())
	if o.note != "" {
		fmt.Fprintf(&b, "%s\n\n", o.note)
	}
	b.WriteString("Cold start = instance process start to its first ready answer (measured by the engine); held request = client-side time of the request that woke the function from zero. Idle RSS = VmRSS of a ready instance 0.5 s after its cold start.\n\n")
	b.WriteString("| function | cold starts | cold start p50 ms | p99 ms | held request p50 ms | p99 ms | idle RSS MB |\n|---|---|---|---|---|---|---|\n")
	var allCold []time.Duration
	for _, r := range colds {
		c, cl := slices.Clone(r.cold), slices.Clone(r.client)
		slices.Sort(c)
		slices.Sort(cl)
		allCold = append(allCold, c...)
		var rss int64
		for _, k := range r.rssKB {
			rss = max(rss, k)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %.1f |\n", r.fn, len(c), msf(scaler.Percentile(c, 50)), msf(scaler.Percentile(c, 99)),
			msf(scaler.Percentile(cl, 50)), msf(scaler.Percentile(cl, 99)), float64(rss)/1024)
	}
	slices.Sort(allCold)
	fmt.Fprintf(&b, "| **all** | %d | %s | %s | | | |\n\n", len(allCold), msf(scaler.Percentile(allCold, 50)), msf(scaler.Percentile(allCold, 99)))
	fmt.Fprintf(&b, "Activator overhead on a warm request (receiver, GET /health/readiness, %d sequential requests each way, interleaved): through the activator p50 %s ms, p99 %s ms; straight to the instance p50 %s ms, p99 %s ms; **overhead p50 %s ms, p99 %s ms**.\n\n",
		ov.n, msf(ov.viaP50), msf(ov.viaP99), msf(ov.directP50), msf(ov.directP99), msf(ov.viaP50-ov.directP50), msf(ov.viaP99-ov.directP99))
	nreq := 0
	for _, n := range h.codes {
		nreq += n
	}
	fmt.Fprintf(&b, "Load: `hey -c %d -z %s -m POST -d '%s' %s` against the receiver, starting with every function at zero.\n\n", o.conc, o.dur, o.body, o.target)
	fmt.Fprintf(&b, "| requests | requests/s | latency p50 ms | p99 ms | slowest ms | status codes | errors |\n|---|---|---|---|---|---|---|\n")
	var codes []string
	for c, n := range h.codes {
		codes = append(codes, fmt.Sprintf("%s: %d", c, n))
	}
	sort.Strings(codes)
	errs := "none"
	if len(h.errors) > 0 {
		errs = strings.Join(h.errors, "; ")
	}
	fmt.Fprintf(&b, "| %d | %.0f | %.1f | %.1f | %.1f | %s | %s |\n\n", nreq, h.rps, h.p50*1000, h.p99*1000, h.slowest*1000, strings.Join(codes, ", "), errs)
	b.WriteString("| function | peak instances | cold starts | requests held | activator errors |\n|---|---|---|---|---|\n")
	for _, f := range fns {
		peak := 0
		for _, s := range samples {
			peak = max(peak, s.instances[f])
		}
		sc := final.Functions[f].Scale
		if sc == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", f, peak, sc.ColdStarts, sc.HeldTotal, sc.Errors)
	}
	if zeroErr != nil {
		fmt.Fprintf(&b, "\nScale to zero: FAILED: %v\n", zeroErr)
	} else {
		fmt.Fprintf(&b, "\nThe load ended at %.0f s; every function was back at zero at %.0f s (%.0f s later).\n", loadEnd, zeroAt, zeroAt-loadEnd)
	}
	b.WriteString("\n![instances per function and offered load](load.png)\n")
	return b.String()
}
