#include "svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace synaps::bench {

namespace {

std::string Num(double v) {
  char buf[32];
  if (std::fabs(v) >= 100 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (std::fabs(v) >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  }
  return buf;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

// A "nice" upper bound for an axis: a round multiple of a power of ten.
double NiceCeil(double v) {
  if (v <= 0) return 1;
  double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

const char* kHead =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
    "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
    "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n";

}  // namespace

std::string BarChart(const std::string& title, const std::string& unit,
                     const std::vector<Bar>& bars) {
  const int left = 190, right = 40, top = 40, row = 30, bottom = 40;
  const int width = 720;
  const int height = top + row * static_cast<int>(bars.size()) + bottom;
  double top_value = 0;
  for (const auto& b : bars) top_value = std::max({top_value, b.max, b.median});
  top_value = NiceCeil(top_value * 1.05);
  const double plot_w = width - left - right;
  auto x = [&](double v) { return left + plot_w * v / top_value; };
  std::ostringstream s;
  char head[512];
  std::snprintf(head, sizeof head, kHead, width, height, width, height);
  s << head;
  s << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" "
       "font-weight=\"bold\">" << Escape(title) << "</text>\n";
  for (int i = 0; i <= 5; ++i) {
    double v = top_value * i / 5;
    double gx = x(v);
    s << "<line x1=\"" << gx << "\" y1=\"" << top << "\" x2=\"" << gx << "\" y2=\""
      << height - bottom << "\" stroke=\"#ddd\"/>\n";
    s << "<text x=\"" << gx << "\" y=\"" << height - bottom + 16
      << "\" text-anchor=\"middle\" fill=\"#555\">" << Num(v) << "</text>\n";
  }
  s << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 6
    << "\" text-anchor=\"middle\" fill=\"#333\">" << Escape(unit)
    << " (bar: median; whisker: min–max)</text>\n";
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    double y = top + row * static_cast<double>(i);
    s << "<text x=\"" << left - 8 << "\" y=\"" << y + row / 2 + 4
      << "\" text-anchor=\"end\">" << Escape(b.label) << "</text>\n";
    s << "<rect x=\"" << left << "\" y=\"" << y + 5 << "\" width=\"" << x(b.median) - left
      << "\" height=\"" << row - 10 << "\" fill=\"" << b.color << "\"/>\n";
    if (b.max > b.min) {
      double cy = y + row / 2.0;
      s << "<line x1=\"" << x(b.min) << "\" y1=\"" << cy << "\" x2=\"" << x(b.max) << "\" y2=\""
        << cy << "\" stroke=\"#222\" stroke-width=\"1.5\"/>\n";
      for (double v : {b.min, b.max}) {
        s << "<line x1=\"" << x(v) << "\" y1=\"" << cy - 6 << "\" x2=\"" << x(v) << "\" y2=\""
          << cy + 6 << "\" stroke=\"#222\" stroke-width=\"1.5\"/>\n";
      }
    }
    s << "<text x=\"" << std::max(x(b.max), x(b.median)) + 6 << "\" y=\"" << y + row / 2 + 4
      << "\" fill=\"#222\">" << Num(b.median) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string LineChart(const std::string& title, const std::string& x_label,
                      const std::string& y_label, const std::vector<Series>& series,
                      bool log_x, double y_max_fixed) {
  const int width = 860, height = 400, left = 70, right = 290, top = 40, bottom = 50;
  double x_min = 1e300, x_max = -1e300, y_max = 0;
  for (const auto& se : series) {
    for (auto [px, py] : se.points) {
      if (log_x && px <= 0) continue;
      x_min = std::min(x_min, px);
      x_max = std::max(x_max, px);
      y_max = std::max(y_max, py);
    }
  }
  if (x_min > x_max) x_min = 0, x_max = 1;
  if (log_x) {
    x_min = std::pow(10, std::floor(std::log10(x_min)));
    x_max = std::pow(10, std::ceil(std::log10(x_max)));
  } else {
    x_min = 0;
    x_max = NiceCeil(x_max);
  }
  y_max = y_max_fixed > 0 ? y_max_fixed : NiceCeil(y_max * 1.05);
  const double pw = width - left - right, ph = height - top - bottom;
  auto X = [&](double v) {
    if (log_x) return left + pw * (std::log10(v) - std::log10(x_min)) /
                                 (std::log10(x_max) - std::log10(x_min));
    return left + pw * (v - x_min) / (x_max - x_min);
  };
  auto Y = [&](double v) { return top + ph - ph * v / y_max; };
  std::ostringstream s;
  char head[512];
  std::snprintf(head, sizeof head, kHead, width, height, width, height);
  s << head;
  s << "<text x=\"" << left + pw / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" "
       "font-weight=\"bold\">" << Escape(title) << "</text>\n";
  for (int i = 0; i <= 5; ++i) {
    double v = y_max * i / 5;
    s << "<line x1=\"" << left << "\" y1=\"" << Y(v) << "\" x2=\"" << left + pw << "\" y2=\""
      << Y(v) << "\" stroke=\"#ddd\"/>\n";
    s << "<text x=\"" << left - 6 << "\" y=\"" << Y(v) + 4 << "\" text-anchor=\"end\" "
         "fill=\"#555\">" << Num(v) << "</text>\n";
  }
  std::vector<double> ticks;
  if (log_x) {
    for (double t = x_min; t <= x_max * 1.0001; t *= 10) ticks.push_back(t);
  } else {
    for (int i = 0; i <= 5; ++i) ticks.push_back(x_min + (x_max - x_min) * i / 5);
  }
  for (double t : ticks) {
    s << "<line x1=\"" << X(t) << "\" y1=\"" << top << "\" x2=\"" << X(t) << "\" y2=\""
      << top + ph << "\" stroke=\"#eee\"/>\n";
    s << "<text x=\"" << X(t) << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\" "
         "fill=\"#555\">" << Num(t) << "</text>\n";
  }
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>\n";
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 10
    << "\" text-anchor=\"middle\" fill=\"#333\">" << Escape(x_label) << "</text>\n";
  s << "<text transform=\"translate(16," << top + ph / 2 << ") rotate(-90)\" "
       "text-anchor=\"middle\" fill=\"#333\">" << Escape(y_label) << "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& se = series[i];
    std::ostringstream path;
    bool first = true;
    for (auto [px, py] : se.points) {
      if (log_x && px <= 0) continue;
      path << (first ? "M" : " L") << X(px) << "," << Y(py);
      first = false;
    }
    s << "<path d=\"" << path.str() << "\" fill=\"none\" stroke=\"" << se.color
      << "\" stroke-width=\"2\"" << (se.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
    if (se.points.size() <= 12) {
      for (auto [px, py] : se.points) {
        s << "<circle cx=\"" << X(px) << "\" cy=\"" << Y(py) << "\" r=\"3.5\" fill=\""
          << se.color << "\"/>\n";
      }
    }
    double ly = top + 14 + 20 * static_cast<double>(i);
    s << "<line x1=\"" << left + pw + 12 << "\" y1=\"" << ly - 4 << "\" x2=\"" << left + pw + 32
      << "\" y2=\"" << ly - 4 << "\" stroke=\"" << se.color << "\" stroke-width=\"2\""
      << (se.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
    s << "<text x=\"" << left + pw + 38 << "\" y=\"" << ly << "\">" << Escape(se.name)
      << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace synaps::bench
