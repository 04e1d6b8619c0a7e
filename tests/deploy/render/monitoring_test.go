package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The metric scan reads registrations from the real sources: histograms get their series
// suffixes, string literals in files without prometheus-cpp do not count.
func TestExportedMetricsFromSources(t *testing.T) {
	names, err := ExportedMetrics("../../../src")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"synaps_queue_items", "synaps_worker_ready", "synaps_outbox_lag_seconds",
		"synaps_http_request_duration_seconds_bucket", "synaps_queue_claim_duration_seconds_count"} {
		if !names[want] {
			t.Errorf("%s not found", want)
		}
	}
	for _, not := range []string{"synaps_dev_", "synaps_worker_ready_bucket", "synaps_http_requests_total_bucket"} {
		if names[not] {
			t.Errorf("%s should not be an exported name", not)
		}
	}
}

func TestExportedMetricsRefusesAnEmptyScan(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.cpp"), []byte(`auto s = "synaps_not_a_metric";`), 0o644)
	if _, err := ExportedMetrics(dir); err == nil {
		t.Fatal("a tree with no registrations must be an error, not an empty allow-list")
	}
}

// A dashboard or rule naming a metric nobody registers fails the check.
func TestInventedMetricNameFails(t *testing.T) {
	rule := object{"kind": "PrometheusRule", "metadata": object{"name": "synaps"},
		"spec": object{"groups": []interface{}{object{"rules": []interface{}{
			object{"alert": "X", "expr": "synaps_tokens_total > 0 or synaps_worker_ready == 0"}}}}}}
	c := &Checker{sourcesDir: "../../../src", current: "monitoring"}
	c.checkMetricNames([]object{rule})
	joined := strings.Join(c.Failures, "\n")
	if !strings.Contains(joined, "synaps_tokens_total is used") || strings.Contains(joined, "synaps_worker_ready is used") {
		t.Fatalf("failures: %v", c.Failures)
	}
}
