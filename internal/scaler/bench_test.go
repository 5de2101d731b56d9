package scaler_test

import (
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jobflow/jobflow/internal/autoscaler"
	"github.com/jobflow/jobflow/internal/scaler"
)

// BenchmarkWarmRequestOverhead times the same GET on a warm instance
// through the activator and straight to the instance, interleaved, and
// reports both p50/p99 and their difference (the activator's overhead).
func BenchmarkWarmRequestOverhead(b *testing.B) {
	p := startPoolTB(b, map[string]string{autoscaler.AnnotationMinScale: "1"})
	waitFor(b, 10*time.Second, "instance ready", func() bool { return p.Status().Instances == 1 })
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(u string) time.Duration {
		start := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	get(p.URL() + "/warm")
	direct := p.Status().PerInstance[0].URL
	for range 200 {
		get(p.URL() + "/warm")
		get(direct + "/warm")
	}
	var via, dir []time.Duration
	b.ResetTimer()
	for range b.N {
		via = append(via, get(p.URL()+"/warm"))
		dir = append(dir, get(direct+"/warm"))
	}
	b.StopTimer()
	slices.Sort(via)
	slices.Sort(dir)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(scaler.Percentile(via, 50)), "via-p50-µs")
	b.ReportMetric(us(scaler.Percentile(via, 99)), "via-p99-µs")
	b.ReportMetric(us(scaler.Percentile(dir, 50)), "direct-p50-µs")
	b.ReportMetric(us(scaler.Percentile(dir, 99)), "direct-p99-µs")
	b.ReportMetric(us(scaler.Percentile(via, 50)-scaler.Percentile(dir, 50)), "overhead-p50-µs")
	b.ReportMetric(us(scaler.Percentile(via, 99)-scaler.Percentile(dir, 99)), "overhead-p99-µs")
}
