package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procCPU is the CPU seconds (user+system) of pid so far, from
// /proc/<pid>/stat, and its parent's pid; ok is false once it is gone.
func procCPU(pid int) (sec float64, ppid int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(stat)
	// Fields after the command name's closing parenthesis: state, ppid,
	// ...; utime and stime are the 12th and 13th (clock ticks, 100/s).
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100, ppid, true
}

// processTree is pid and its descendants (a PostgreSQL server's backends).
func processTree(pid int) []int {
	if pid <= 0 {
		return nil
	}
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if _, ppid, ok := procCPU(p); ok {
			children[ppid] = append(children[ppid], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// pidFrom reads the pid in the first line of file (0 if none).
func pidFrom(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// cpuMeter adds up the CPU each named process (or group of processes)
// used between start and end: it reads /proc every 500 ms, so a process
// that starts or ends meanwhile counts from its first to its last reading.
type cpuMeter struct {
	procs func() map[string][]int
	mu    sync.Mutex
	first map[int]float64
	last  map[int]float64
	name  map[int]string
	self0 float64
	stop  chan struct{}
	done  chan struct{}
}

func startCPU(procs func() map[string][]int) *cpuMeter {
	m := &cpuMeter{procs: procs, first: map[int]float64{}, last: map[int]float64{}, name: map[int]string{},
		stop: make(chan struct{}), done: make(chan struct{})}
	m.self0, _ = cpuTimes()
	m.sample()
	go func() {
		defer close(m.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *cpuMeter) sample() {
	for name, pids := range m.procs() {
		for _, pid := range pids {
			sec, _, ok := procCPU(pid)
			if !ok {
				continue
			}
			m.mu.Lock()
			if _, seen := m.first[pid]; !seen {
				m.first[pid], m.name[pid] = sec, name
			}
			m.last[pid] = sec
			m.mu.Unlock()
		}
	}
}

// end stops the meter: CPU seconds by name, with the bench's own process
// (load generator and probes) as "bench".
func (m *cpuMeter) end() map[string]float64 {
	m.sample()
	close(m.stop)
	<-m.done
	self1, _ := cpuTimes()
	out := map[string]float64{"bench": self1 - m.self0}
	m.mu.Lock()
	defer m.mu.Unlock()
	for pid, first := range m.first {
		out[m.name[pid]] += m.last[pid] - first
	}
	return out
}

// perJob writes CPU µs per job by name, largest first, with the sum of
// the system's processes (all but the bench and the databases) first.
func perJob(cpu map[string]float64, jobs int) string {
	if jobs == 0 {
		return ""
	}
	names := make([]string, 0, len(cpu))
	var system float64
	for n, sec := range cpu {
		names = append(names, n)
		if n != "bench" && n != "postgres" && n != "clickhouse" {
			system += sec
		}
	}
	sort.Slice(names, func(i, j int) bool { return cpu[names[i]] > cpu[names[j]] })
	us := func(sec float64) string { return strconv.FormatFloat(sec*1e6/float64(jobs), 'f', 0, 64) }
	parts := []string{"**system " + us(system) + "**"}
	for _, n := range names {
		parts = append(parts, n+" "+us(cpu[n]))
	}
	return strings.Join(parts, ", ")
}
