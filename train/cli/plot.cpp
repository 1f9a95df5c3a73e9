#include "train/cli/plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/atomic_file.h"
#include "tensor/error.h"

namespace graft::cli {

namespace {

struct Series {
  std::vector<double> x, y;
  std::string colour, label;
  bool dots = false;  // evaluations: dots joined by a line; steps: a line
};

// The running mean over the last `window` values (the raw step losses are too noisy to read).
std::vector<double> moving_average(const std::vector<double>& v, size_t window) {
  std::vector<double> out(v.size());
  double sum = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    sum += v[i];
    if (i >= window) sum -= v[i - window];
    out[i] = sum / static_cast<double>(std::min(i + 1, window));
  }
  return out;
}

std::string number(double v) {
  std::ostringstream s;
  s.precision(3);
  s << v;
  return s.str();
}

// One panel at (left, top), w x h, with axes, 5 ticks each way and a legend.
void panel(std::ostringstream& svg, double left, double top, double w, double h, const std::string& title,
           const std::vector<Series>& series) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  svg << "<text x=\"" << left + w / 2 << "\" y=\"" << top - 8 << "\" text-anchor=\"middle\" font-size=\"14\">" << title
      << "</text>\n<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << w << "\" height=\"" << h
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
  if (!(x0 <= x1)) return;  // nothing to draw
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * w; };
  auto py = [&](double y) { return top + h - (y - y0) / (y1 - y0) * h; };
  for (int t = 0; t <= 4; ++t) {
    const double xv = x0 + (x1 - x0) * t / 4, yv = y0 + (y1 - y0) * t / 4;
    svg << "<text x=\"" << px(xv) << "\" y=\"" << top + h + 16 << "\" text-anchor=\"middle\" font-size=\"11\">"
        << number(std::round(xv)) << "</text>\n<text x=\"" << left - 6 << "\" y=\"" << py(yv) + 4
        << "\" text-anchor=\"end\" font-size=\"11\">" << number(yv) << "</text>\n<line x1=\"" << left << "\" x2=\""
        << left + w << "\" y1=\"" << py(yv) << "\" y2=\"" << py(yv) << "\" stroke=\"#eee\"/>\n";
  }
  svg << "<text x=\"" << left + w / 2 << "\" y=\"" << top + h + 32 << "\" text-anchor=\"middle\" font-size=\"11\">"
      << "optimizer step</text>\n";
  double legend_x = left;  // the legend runs below the axis title, clear of the data
  for (const auto& s : series) {
    if (s.x.empty()) continue;
    svg << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"1.5\" points=\"";
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) svg << px(s.x[i]) << "," << py(s.y[i]) << " ";
    svg << "\"/>\n";
    if (s.dots)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i]))
          svg << "<circle cx=\"" << px(s.x[i]) << "\" cy=\"" << py(s.y[i]) << "\" r=\"3\" fill=\"" << s.colour << "\"/>\n";
    svg << "<text x=\"" << legend_x << "\" y=\"" << top + h + 50 << "\" font-size=\"11\" fill=\"" << s.colour << "\">"
        << (s.dots ? "\u25cf " : "\u2014 ") << s.label << "</text>\n";
    legend_x += 7.0 * static_cast<double>(s.label.size()) + 30;
  }
}

}  // namespace

void write_learning_curves(const std::filesystem::path& log_jsonl, const std::filesystem::path& out_svg) {
  std::ifstream in(log_jsonl);
  if (!in) throw IOError("plot: cannot read " + log_jsonl.string());
  std::vector<double> steps, losses, train_steps, train_accuracy, eval_steps, eval_loss, eval_metric;
  std::string metric;  // accuracy, else rmse
  int64_t number_of_line = 0;
  for (std::string line; std::getline(in, line);) {
    ++number_of_line;
    if (line.empty()) continue;
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError("plot: " + log_jsonl.string() + ":" + std::to_string(number_of_line) + ": not JSON (" + e.what() + ")");
    }
    const auto value = [&](const char* key) {
      return r.contains(key) && r[key].is_number() ? r[key].get<double>() : std::numeric_limits<double>::quiet_NaN();
    };
    if (r.value("event", "") == "step") {
      steps.push_back(value("step"));
      losses.push_back(value("loss"));
      if (r.contains("train_accuracy")) train_steps.push_back(value("step")), train_accuracy.push_back(value("train_accuracy"));
    } else if (r.value("event", "") == "eval") {
      if (metric.empty()) metric = r.contains("accuracy") ? "accuracy" : "rmse";
      eval_steps.push_back(value("step"));
      eval_loss.push_back(value("loss"));
      eval_metric.push_back(value(metric.c_str()));
    }
  }
  if (steps.empty()) throw ValueError("plot: " + log_jsonl.string() + " has no step record (is it a graft run's log.jsonl?)");
  const size_t window = std::max<size_t>(1, steps.size() / 50);
  const std::string train_colour = "#1f77b4", eval_colour = "#d62728";
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"360\" font-family=\"sans-serif\">\n"
      << "<rect width=\"960\" height=\"360\" fill=\"white\"/>\n";
  panel(svg, 70, 40, 370, 250, "loss",
        {{steps, moving_average(losses, window), train_colour, "training (moving average)", false},
         {eval_steps, eval_loss, eval_colour, "validation", true}});
  std::vector<Series> metric_series;
  if (metric != "rmse" && !train_accuracy.empty())
    metric_series.push_back({train_steps, moving_average(train_accuracy, window), train_colour, "training (moving average)", false});
  metric_series.push_back({eval_steps, eval_metric, eval_colour, "validation", true});
  panel(svg, 560, 40, 370, 250, metric.empty() ? "accuracy" : metric, metric_series);
  svg << "</svg>\n";
  nn::write_file_atomic(out_svg, svg.str());
}

}  // namespace graft::cli
