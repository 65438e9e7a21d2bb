package test

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricFamilies are the families meshka's admin listener serves on
// /metrics, by type: a dashboard query may name only these (histograms
// by their _bucket, _sum and _count series), and Go's go_* and process_*
// collectors. Renaming a metric without the dashboard fails here.
var metricFamilies = map[string]string{
	"meshka_build_info":                     "gauge",
	"meshka_kafka_requests_total":           "counter",
	"meshka_kafka_request_duration_seconds": "histogram",
	"meshka_connections":                    "gauge",
	"meshka_connections_accepted_total":     "counter",
	"meshka_connections_refused_total":      "counter",
	"meshka_received_bytes_total":           "counter",
	"meshka_sent_bytes_total":               "counter",
	"meshka_cache_bytes":                    "gauge",
	"meshka_cache_limit_bytes":              "gauge",
	"meshka_cache_hits_total":               "counter",
	"meshka_cache_misses_total":             "counter",
	"meshka_cache_evictions_total":          "counter",
	"meshka_cache_read_throughs_total":      "counter",
	"meshka_upstream_up":                    "gauge",
	"meshka_upstream_requests_total":        "counter",
	"meshka_upstream_request_errors_total":  "counter",
	"meshka_upstream_fetch_bytes_total":     "counter",
	"meshka_upstream_produce_bytes_total":   "counter",
	"meshka_actors":                         "gauge",
	"meshka_cluster_members":                "gauge",
	"meshka_cluster_topology_changes_total": "counter",
	"meshka_produce_batches_inflight":       "gauge",
	"meshka_produce_batches_retried_total":  "counter",
	"meshka_mqtt_sessions":                  "gauge",
	"meshka_mqtt_messages_received_total":   "counter",
	"meshka_mqtt_messages_sent_total":       "counter",
	"meshka_http_requests_total":            "counter",
	"meshka_http_request_duration_seconds":  "histogram",
	"meshka_http_streams":                   "gauge",
}

// family names the metric family a series name belongs to, or "" when
// it is not one meshka serves.
func family(series string) string {
	if strings.HasPrefix(series, "go_") || strings.HasPrefix(series, "process_") {
		return series
	}
	if _, ok := metricFamilies[series]; ok {
		return series
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(series, suffix); ok && metricFamilies[f] == "histogram" {
			return f
		}
	}
	return ""
}

// TestGrafanaDashboard checks deploy/grafana/meshka.json: valid JSON,
// a datasource and a node variable that every query uses, and queries
// over meshka's metric families only, every family charted.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../deploy/grafana/meshka.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var dash struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Query      any    `json:"query"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/meshka.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("the dashboard has no title or uid")
	}

	vars := map[string]string{}
	charted := map[string]bool{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			m := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*instance\s*\)$`).FindStringSubmatch(v.Definition)
			if m == nil || family(m[1]) == "" {
				t.Errorf("variable %s: %q is not label_values of a meshka metric's instances", v.Name, v.Definition)
			} else {
				charted[family(m[1])] = true
			}
		}
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("variables %v, want a datasource variable and an instance (node) query", vars)
	}

	var walk func([]panel)
	ids := map[int]string{}
	queries := 0
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, ok := ids[p.ID]; ok {
				t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: a query not on the datasource variable", p.Title)
				}
				if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
					t.Errorf("panel %q: %s does not select the instance variable's nodes", p.Title, tg.Expr)
				}
				names, err := promqlMetrics(tg.Expr)
				if err != nil || len(names) == 0 {
					t.Errorf("panel %q: %s: %v, metrics %v", p.Title, tg.Expr, err, names)
				}
				for _, n := range names {
					if f := family(n); f == "" {
						t.Errorf("panel %q: %s names %s, which meshka does not serve", p.Title, tg.Expr, n)
					} else {
						charted[f] = true
					}
				}
			}
		}
	}
	walk(dash.Panels)
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
	for f := range metricFamilies {
		if !charted[f] {
			t.Errorf("no panel charts %s", f)
		}
	}
}

// promqlMetrics lists the metric names a PromQL expression selects:
// the identifiers left once strings, label matchers, ranges, grouping
// labels, function names, keywords and numbers are set aside.
func promqlMetrics(expr string) ([]string, error) {
	s := regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`+"`[^`]*`").ReplaceAllString(expr, `""`)
	s = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`).ReplaceAllString(s, " ")
	s = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`).ReplaceAllString(s, " ")
	if strings.ContainsAny(s, "{}[]") {
		return nil, errUnbalanced
	}
	keywords := []string{"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"}
	var names []string
	for _, loc := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`).FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.") {
			continue // a number's exponent or a duration's unit
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		if slices.Contains(keywords, strings.ToLower(word)) {
			continue
		}
		names = append(names, word)
	}
	return names, nil
}

var errUnbalanced = errors.New("unbalanced braces or brackets")

// TestPromqlMetrics checks the dashboard test's reading of PromQL.
func TestPromqlMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (le, api) (rate(meshka_x_bucket{instance=~"$instance",api="Fetch"}[$__rate_interval]))`: {"meshka_x_bucket"},
		`histogram_quantile(0.99, a) / on (instance) group_left b offset 5m`:                            {"a", "b"},
		`up == bool 1e3 or absent(c{l="{}"})`:                                                           {"up", "c"},
	} {
		got, err := promqlMetrics(expr)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("promqlMetrics(%s) = %v, %v; want %v", expr, got, err, want)
		}
	}
	if _, err := promqlMetrics(`a{b="c"`); err == nil {
		t.Errorf("an unclosed matcher passed")
	}
}
