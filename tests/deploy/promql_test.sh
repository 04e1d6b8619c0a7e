#!/usr/bin/env bash
# The chart's alerts and dashboard queries through promtool (Debian package prometheus):
# renders them as rule files (synaps-chart promql), `promtool check rules` parses every
# expression, `promtool test rules` runs tests/deploy/alerts_test.yaml against the alerts.
# Exits 77 (skipped) when promtool is not installed (scripts/install-deps installs it).
#
#   promql_test.sh SYNAPS_CHART CHART_DIR VALUES_FILE ALERTS_TEST OUT_DIR
set -euo pipefail
tool=$1 chart=$2 values=$3 alerts_test=$4 out=$5
promtool=${PROMTOOL:-$(command -v promtool || true)}
if [ -z "$promtool" ]; then
  echo "promtool not found (apt-get install prometheus, or set PROMTOOL): skipped"
  exit 77
fi
rm -rf "$out" && mkdir -p "$out"
"$tool" promql --chart "$chart" --values "$values" --out "$out"
"$promtool" check rules "$out/alerts.rules.yaml" "$out/dashboard.rules.yaml"
cp "$alerts_test" "$out/alerts_test.yaml"
cd "$out" && "$promtool" test rules alerts_test.yaml
