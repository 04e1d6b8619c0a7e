// Hand-written SVG plots for docs/benchmarks.md: horizontal bars with min–max whiskers, and
// line charts (optionally with a logarithmic x axis). Self-contained files, no scripts.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace synaps::bench {

struct Bar {
  std::string label;
  double median = 0, min = 0, max = 0;
  std::string color = "#4e79a7";
};

struct Series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;
  bool dashed = false;
};

std::string BarChart(const std::string& title, const std::string& unit,
                     const std::vector<Bar>& bars);
std::string LineChart(const std::string& title, const std::string& x_label,
                      const std::string& y_label, const std::vector<Series>& series, bool log_x,
                      double y_max_fixed = 0);

}  // namespace synaps::bench
