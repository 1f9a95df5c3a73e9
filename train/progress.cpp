#include "train/progress.h"

#include <unistd.h>

#include <cmath>

namespace graft::train {

ProgressBar::ProgressBar(int64_t total_steps, ProgressOptions options)
    : total_(total_steps), options_(options), start_(std::chrono::steady_clock::now()) {
  terminal_ = options_.force_terminal >= 0 ? options_.force_terminal == 1 : isatty(fileno(options_.stream)) != 0;
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char out[32];
  if (s < 60) std::snprintf(out, sizeof out, "%llds", static_cast<long long>(s));
  else if (s < 3600) std::snprintf(out, sizeof out, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else std::snprintf(out, sizeof out, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  return out;
}

std::string ProgressBar::status(int64_t step, double loss, double lr) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0;
  const int64_t done = step - first_step_ + 1;
  const double eta = done > 0 && total_ > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total_ - step) : NAN;
  char out[256];
  std::snprintf(out, sizeof out, "loss %.4f  lr %.3g  %.1f samples/s  ETA %s", loss, lr, rate,
                format_duration(eta).c_str());
  return out;
}

void ProgressBar::update(int64_t step, double loss, double lr, int64_t samples_in_step) {
  if (!options_.enabled) return;
  if (first_step_ < 0) first_step_ = step;
  samples_ += samples_in_step;
  if (terminal_) {
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * std::min<int64_t>(step, total_) / total_) : 0;
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
    std::fprintf(options_.stream, "\r\033[Kstep %lld/%lld [%s] %s", static_cast<long long>(step),
                 static_cast<long long>(total_), bar.c_str(), status(step, loss, lr).c_str());
    line_open_ = true;
  } else if (step % std::max<int64_t>(options_.plain_every, 1) == 0 || step == total_) {
    std::fprintf(options_.stream, "step %lld/%lld  %s\n", static_cast<long long>(step), static_cast<long long>(total_),
                 status(step, loss, lr).c_str());
  }
  std::fflush(options_.stream);
}

void ProgressBar::message(const std::string& line) {
  if (!options_.enabled) return;
  if (line_open_) std::fputc('\n', options_.stream);
  line_open_ = false;
  std::fprintf(options_.stream, "%s\n", line.c_str());
  std::fflush(options_.stream);
}

void ProgressBar::finish() {
  if (!options_.enabled) return;
  if (line_open_) std::fputc('\n', options_.stream);
  line_open_ = false;
  std::fflush(options_.stream);
}

}  // namespace graft::train
