// Package check reads the Grafana dashboards of deploy/grafana and checks
// their queries: each panel's PromQL must parse with Prometheus's own
// parser, and the metric names it selects can be compared with what the
// running code exports on /metrics.
package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Query is one PromQL expression of one dashboard panel (or variable).
type Query struct {
	Dashboard, Panel, Expr string
}

// String names the query for error messages.
func (q Query) String() string { return fmt.Sprintf("%s / %q: %s", q.Dashboard, q.Panel, q.Expr) }

type panelJSON struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panelJSON `json:"panels"` // a collapsed row's panels
}

type dashboardJSON struct {
	Title      string      `json:"title"`
	Panels     []panelJSON `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// LoadDir returns the queries of every *.json dashboard in dir, in file
// order, and fails on a dashboard without any.
func LoadDir(dir string) ([]Query, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards (*.json) in %s", dir)
	}
	var all []Query
	for _, f := range files {
		qs, err := Load(f)
		if err != nil {
			return nil, err
		}
		all = append(all, qs...)
	}
	return all, nil
}

// promql is Prometheus's parser with its default options: the functions
// and syntax a stock Prometheus accepts.
var promql = parser.NewParser(parser.Options{})

// labelValues is Grafana's variable query label_values(<selector>, <label>).
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// Load returns the queries of one dashboard file: every panel target's
// expr and the selector of each label_values variable.
func Load(file string) ([]Query, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var d dashboardJSON
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	name := filepath.Base(file)
	var qs []Query
	var walk func([]panelJSON)
	walk = func(ps []panelJSON) {
		for _, p := range ps {
			for _, t := range p.Targets {
				qs = append(qs, Query{Dashboard: name, Panel: p.Title, Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no panel has a query", file)
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			// Older Grafana keeps the query as a plain string.
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				return nil, fmt.Errorf("%s: variable %s: %w", file, v.Name, err)
			}
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			return nil, fmt.Errorf("%s: variable %s: only label_values(<selector>, <label>) is checked, got %q", file, v.Name, q.Query)
		}
		qs = append(qs, Query{Dashboard: name, Panel: "variable " + v.Name, Expr: m[1]})
	}
	return qs, nil
}

// grafanaRanges are Grafana's interval variables, which stand where
// PromQL wants a duration.
var grafanaRanges = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

// Metrics parses the query, with Grafana's interval variables replaced by
// a duration, and returns the metric names it selects, sorted. A selector
// without a metric name is an error: a dashboard should name what it
// reads. (Template variables like "$function" inside label matchers are
// plain strings to PromQL and stay as they are.)
func Metrics(expr string) ([]string, error) {
	e, err := promql.ParseExpr(grafanaRanges.ReplaceAllString(expr, "5m"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var noName error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			noName = fmt.Errorf("selector %s names no metric", vs)
			return nil
		}
		seen[name] = true
		return nil
	})
	if noName != nil {
		return nil, noName
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Exported returns the sample names an exposition (the text of /metrics)
// offers: each family's name, and for histograms and summaries the
// _bucket, _sum and _count series as well.
func Exported(exposition string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		names[f[2]] = true
		switch f[3] {
		case "histogram":
			names[f[2]+"_bucket"], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
		case "summary":
			names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
		}
	}
	return names
}
