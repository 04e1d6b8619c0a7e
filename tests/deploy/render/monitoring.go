// Checks of the optional monitoring objects (values monitoring.*, docs/observability.md): the
// ServiceMonitor and PodMonitor select the API and the workers, the Grafana dashboard ConfigMap
// carries the sidecar's label and valid dashboard JSON, the PrometheusRule holds the documented
// alerts with the configured thresholds, and every synaps_* name in any of them is a metric the
// sources register with prometheus-cpp (read from src/, not from a list kept by hand).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The alerts of templates/prometheusrule.yaml, by the values key that configures each.
var alertsByRule = map[string]string{
	"queueStalled":          "SynapsQueueStalled",
	"queueAge":              "SynapsQueueAge",
	"queueBacklog":          "SynapsQueueBacklog",
	"outboxLag":             "SynapsOutboxLag",
	"deadLettersPresent":    "SynapsDeadLetters",
	"deadLettersIncreasing": "SynapsDeadLettersIncreasing",
	"noWorkers":             "SynapsNoWorkers",
	"taskFailureRate":       "SynapsTaskFailureRate",
	"providerErrorRate":     "SynapsProviderErrorRate",
	"databaseUnreachable":   "SynapsDatabaseUnreachable",
	"apiMetricsAbsent":      "SynapsApiMetricsAbsent",
	"api5xxRate":            "SynapsApi5xxRate",
}

var (
	metricNameRE   = regexp.MustCompile(`\bsynaps_[a-z0-9_]+`)
	quotedMetricRE = regexp.MustCompile(`"(synaps_[a-z0-9_]+)"`)
	histogramRE    = regexp.MustCompile(`BuildHistogram\(\)\s*\.Name\("(synaps_[a-z0-9_]+)"\)`)
	// Histograms a process keeps itself and writes out as a MetricFamily (cli/worker_health.cpp).
	familyHistogramRE = regexp.MustCompile(`(?s)\.name\s*=\s*"(synaps_[a-z0-9_]+)"[^;]*?MetricType::Histogram`)
)

// ExportedMetrics reads the metric names registered in the sources under dir: every quoted
// synaps_* literal in a file that includes a prometheus-cpp header, plus _bucket, _sum and
// _count of those built with BuildHistogram. Errors when the scan finds implausibly little.
func ExportedMetrics(dir string) (map[string]bool, error) {
	names := map[string]bool{}
	histograms := 0
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !(strings.HasSuffix(p, ".cpp") || strings.HasSuffix(p, ".h")) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(data)
		if !strings.Contains(text, "#include <prometheus/") {
			return nil
		}
		for _, m := range quotedMetricRE.FindAllStringSubmatch(text, -1) {
			names[m[1]] = true
		}
		found := histogramRE.FindAllStringSubmatch(text, -1)
		found = append(found, familyHistogramRE.FindAllStringSubmatch(text, -1)...)
		for _, m := range found {
			histograms++
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(names) < 20 || histograms == 0 || !names["synaps_worker_tasks_total"] ||
		!names["synaps_http_requests_total"] {
		return nil, fmt.Errorf("only %d metric names (%d histograms) found under %s: the scan is broken",
			len(names), histograms, dir)
	}
	return names, nil
}

func (c *Checker) monitoringObjects() []object {
	var out []object
	for _, d := range c.docs {
		o := d.Object
		switch o["kind"] {
		case "ServiceMonitor", "PodMonitor", "PrometheusRule":
			out = append(out, o)
		case "ConfigMap":
			if _, ok := labelsOf(at(o, "metadata", "labels"))["grafana_dashboard"]; ok {
				out = append(out, o)
			}
		}
	}
	return out
}

func (c *Checker) checkMonitoring() {
	objs := c.monitoringObjects()
	if !c.exp.monitoring {
		for _, o := range objs {
			c.expect(false, "%s rendered although monitoring.* is off by default", ref(o))
		}
		return
	}
	c.checkScrapeTargets()
	c.checkDashboards()
	c.checkAlerts()
	c.checkMetricNames(objs)
}

func (c *Checker) checkScrapeTargets() {
	sm := c.find("ServiceMonitor", "synaps-control-api")
	if c.expect(sm != nil, "ServiceMonitor/synaps-control-api is missing") {
		svc := c.find("Service", "synaps-control-api")
		sel := obj(at(sm, "spec", "selector"))
		c.expect(svc != nil && matchesSelector(sel, labelsOf(at(svc, "metadata", "labels"))),
			"the ServiceMonitor does not select Service/synaps-control-api")
		eps := list(at(sm, "spec", "endpoints"))
		c.expect(len(eps) == 1 && str(obj(eps[0])["port"]) == "http" && str(obj(eps[0])["path"]) == "/metrics",
			"the ServiceMonitor should scrape port http at /metrics, has %v", eps)
		c.expect(labelsOf(at(sm, "metadata", "labels"))["release"] == "kube-prometheus-stack",
			"monitoring.serviceMonitor.labels are not on the ServiceMonitor")
	}
	pm := c.find("PodMonitor", "synaps-demo-worker")
	if c.expect(pm != nil, "PodMonitor/synaps-demo-worker is missing") {
		worker := c.component("worker")
		c.expect(worker != nil && matchesSelector(obj(at(pm, "spec", "selector")),
			labelsOf(at(podTemplate(worker), "metadata", "labels"))),
			"the PodMonitor does not select the worker pods")
		eps := list(at(pm, "spec", "podMetricsEndpoints"))
		c.expect(len(eps) == 1 && str(obj(eps[0])["port"]) == "health" && str(obj(eps[0])["path"]) == "/metrics",
			"the PodMonitor should scrape port health at /metrics, has %v", eps)
	}
	// monitoring-values.yaml lets Prometheus in the monitoring namespace through the policies.
	prometheus := peer{desc: "prometheus", nsLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"},
		podLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	c.expect(c.allowed(prometheus, c.podPeer("control-api"), 8081, "TCP"), "Prometheus cannot scrape the API")
	c.expect(c.allowed(prometheus, c.podPeer("worker"), 9090, "TCP"), "Prometheus cannot scrape the workers")
}

func (c *Checker) checkDashboards() {
	cm := c.find("ConfigMap", "synaps-dashboards")
	if !c.expect(cm != nil, "ConfigMap/synaps-dashboards is missing") {
		return
	}
	c.expect(labelsOf(at(cm, "metadata", "labels"))["grafana_dashboard"] == "1",
		"the dashboard ConfigMap lacks the sidecar's label grafana_dashboard: \"1\"")
	c.expect(str(at(cm, "metadata", "namespace")) == "monitoring",
		"the dashboard ConfigMap is in %q, not monitoring.dashboards.namespace", str(at(cm, "metadata", "namespace")))
	c.expect(str(at(cm, "metadata", "annotations", "grafana_folder")) == "Synaps",
		"monitoring.dashboards.annotations are not on the ConfigMap")
	data := obj(cm["data"])
	c.expect(len(data) > 0, "the dashboard ConfigMap has no data")
	for key, v := range data {
		c.expect(strings.HasSuffix(key, ".json"), "dashboard %s is not a .json file", key)
		var dash map[string]interface{}
		if !c.expect(json.Unmarshal([]byte(str(v)), &dash) == nil, "dashboard %s is not valid JSON", key) {
			continue
		}
		c.expect(str(dash["uid"]) != "" && str(dash["title"]) != "", "dashboard %s has no uid or title", key)
		ids := map[int]bool{}
		queries := 0
		for _, p := range list(dash["panels"]) {
			panel := obj(p)
			id := num(panel["id"])
			c.expect(id > 0 && !ids[id], "dashboard %s: panel %q has a missing or repeated id", key, str(panel["title"]))
			ids[id] = true
			if str(panel["type"]) == "row" {
				continue
			}
			targets := list(panel["targets"])
			c.expect(len(targets) > 0, "dashboard %s: panel %q has no query", key, str(panel["title"]))
			c.expect(str(at(panel, "datasource", "uid")) == "${datasource}",
				"dashboard %s: panel %q does not use the datasource variable", key, str(panel["title"]))
			for _, t := range targets {
				expr := str(obj(t)["expr"])
				queries++
				c.expect(metricNameRE.MatchString(expr), "dashboard %s: panel %q queries no Synaps metric: %q",
					key, str(panel["title"]), expr)
				c.expect(strings.Contains(expr, `namespace=~"$namespace"`),
					"dashboard %s: panel %q ignores the namespace variable: %q", key, str(panel["title"]), expr)
			}
		}
		c.expect(queries >= 15, "dashboard %s has only %d queries", key, queries)
	}
}

func (c *Checker) checkAlerts() {
	rule := c.find("PrometheusRule", "synaps")
	if !c.expect(rule != nil, "PrometheusRule/synaps is missing") {
		return
	}
	c.expect(labelsOf(at(rule, "metadata", "labels"))["release"] == "kube-prometheus-stack",
		"monitoring.prometheusRule.labels are not on the PrometheusRule")
	alerts := map[string]object{}
	for _, g := range list(at(rule, "spec", "groups")) {
		for _, r := range list(obj(g)["rules"]) {
			alerts[str(obj(r)["alert"])] = obj(r)
		}
	}
	for key, name := range alertsByRule {
		a, ok := alerts[name]
		if key == "deadLettersIncreasing" { // turned off in monitoring-values.yaml
			c.expect(!ok, "%s rendered although rules.%s.enabled is false", name, key)
			continue
		}
		if !c.expect(ok, "alert %s (rules.%s) is missing", name, key) {
			continue
		}
		expr := str(a["expr"])
		c.expect(metricNameRE.MatchString(expr), "%s queries no Synaps metric: %q", name, expr)
		c.expect(strings.Contains(expr, `namespace="`+namespace+`"`), "%s is not limited to the release's namespace: %q", name, expr)
		c.expect(str(a["for"]) != "", "%s has no `for`", name)
		labels := labelsOf(a["labels"])
		c.expect(labels["severity"] != "" && labels["team"] == "platform",
			"%s lacks its severity or the alertLabels: %v", name, labels)
		c.expect(str(at(a, "annotations", "summary")) != "" && str(at(a, "annotations", "description")) != "",
			"%s lacks a summary or description", name)
	}
	c.expect(len(alerts) == len(alertsByRule)-1, "the PrometheusRule has %d alerts, want %d", len(alerts),
		len(alertsByRule)-1)
	if a := alerts["SynapsOutboxLag"]; a != nil {
		c.expect(strings.HasSuffix(strings.TrimSpace(str(a["expr"])), "> 45"),
			"SynapsOutboxLag does not use rules.outboxLag.threshold (45): %q", str(a["expr"]))
	}
}

// Every synaps_* name anywhere in the monitoring objects (queries, descriptions) must be a
// metric the sources export.
func (c *Checker) checkMetricNames(objs []object) {
	if !c.expect(c.sourcesDir != "", "--sources is required to check the metric names") {
		return
	}
	exported, err := ExportedMetrics(c.sourcesDir)
	if !c.expect(err == nil, "reading the exported metrics: %v", err) {
		return
	}
	used := map[string]bool{}
	for _, o := range objs {
		text, _ := json.Marshal(o)
		for _, m := range metricNameRE.FindAllString(string(text), -1) {
			used[m] = true
		}
	}
	var names []string
	for m := range used {
		names = append(names, m)
	}
	sort.Strings(names)
	c.expect(len(names) >= 15, "only %d metric names used: %v", len(names), names)
	for _, m := range names {
		c.expect(exported[m], "%s is used in a dashboard or alert but no source under %s registers it", m, c.sourcesDir)
	}
}

// WritePromQL writes what promtool can check from the rendered monitoring objects into dir:
// alerts.rules.yaml (the PrometheusRule's spec, a rule file as it stands) and
// dashboard.rules.yaml (every dashboard query as a recording rule, with Grafana's
// $__rate_interval and $namespace replaced by values Prometheus accepts).
func WritePromQL(docs []Document, dir string) error {
	var rules []interface{}
	var spec interface{}
	for _, d := range docs {
		o := d.Object
		switch {
		case o["kind"] == "PrometheusRule":
			spec = o["spec"]
		case o["kind"] == "ConfigMap" && labelsOf(at(o, "metadata", "labels"))["grafana_dashboard"] != "":
			for key, v := range obj(o["data"]) {
				var dash map[string]interface{}
				if err := json.Unmarshal([]byte(str(v)), &dash); err != nil {
					return fmt.Errorf("dashboard %s: %v", key, err)
				}
				for _, p := range list(dash["panels"]) {
					for _, t := range list(obj(p)["targets"]) {
						expr := strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*").Replace(str(obj(t)["expr"]))
						rules = append(rules, map[string]interface{}{
							"record": fmt.Sprintf("synaps:dashboard_query_%d", len(rules)+1), "expr": expr})
					}
				}
			}
		}
	}
	if spec == nil || len(rules) == 0 {
		return fmt.Errorf("no PrometheusRule or no dashboard queries rendered: enable monitoring.*")
	}
	dashboard := map[string]interface{}{"groups": []interface{}{
		map[string]interface{}{"name": "synaps-dashboard", "rules": rules}}}
	for name, content := range map[string]interface{}{"alerts.rules.yaml": spec, "dashboard.rules.yaml": dashboard} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(toYAML(content)), 0o644); err != nil {
			return err
		}
	}
	return nil
}
