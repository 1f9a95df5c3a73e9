// Progress output for a training run. On a terminal: one line redrawn in place
// ("step 120/500 [=====>    ] loss 0.4312 lr 1.9e-05 52.3 samples/s ETA 1m12s"). Elsewhere (CI,
// a pipe, a log file): a plain line every `plain_every` steps, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace graft::train {

struct ProgressOptions {
  bool enabled = true;
  int64_t plain_every = 50;  // steps between lines when not on a terminal
  FILE* stream = stderr;
  int force_terminal = -1;   // -1: ask isatty; 0/1: tests and pipes that want one behaviour
};

class ProgressBar {
 public:
  ProgressBar(int64_t total_steps, ProgressOptions options = {});
  // Called after each optimizer step.
  void update(int64_t step, double loss, double lr, int64_t samples_in_step);
  // A line that must not be overwritten (evaluation results, warnings).
  void message(const std::string& line);
  void finish();
  static std::string format_duration(double seconds);  // "45s", "3m05s", "1h02m"

 private:
  std::string status(int64_t step, double loss, double lr) const;
  int64_t total_;
  ProgressOptions options_;
  bool terminal_;
  bool line_open_ = false;
  std::chrono::steady_clock::time_point start_;
  int64_t samples_ = 0;
  int64_t first_step_ = -1;
};

}  // namespace graft::train
