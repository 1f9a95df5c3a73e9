#include "train/run_log.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "tensor/error.h"

namespace graft::train {

RunLog::RunLog(const std::filesystem::path& path, bool append) {
  file_ = std::fopen(path.c_str(), append ? "a+" : "w");
  if (!file_) throw IOError("RunLog: cannot open " + path.string() + ": " + std::strerror(errno));
  // A run that crashed mid-line left a fragment: end it, so the next record starts a line of its own.
  if (append && std::fseek(file_, -1, SEEK_END) == 0 && std::fgetc(file_) != '\n') std::fputc('\n', file_);
}

RunLog::~RunLog() {
  if (file_) std::fclose(file_);
}

RunLog::RunLog(RunLog&& other) noexcept : file_(std::exchange(other.file_, nullptr)) {}

RunLog& RunLog::operator=(RunLog&& other) noexcept {
  if (this != &other) {
    if (file_) std::fclose(file_);
    file_ = std::exchange(other.file_, nullptr);
  }
  return *this;
}

void RunLog::write(const nlohmann::json& record) {
  if (!file_) return;
  // NaN/Inf are not JSON: nlohmann writes them as null, which plotting scripts can skip.
  const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw IOError(std::string("RunLog: write failed: ") + std::strerror(errno));
  }
}

}  // namespace graft::train
