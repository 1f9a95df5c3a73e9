// The run's JSONL log: one JSON object per line ({"event": "step", "step": 10, "loss": ...}),
// appended and flushed line by line so a crashed run keeps everything up to its last step, and so
// plotting scripts can read it while the run goes on.
#pragma once

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace graft::train {

class RunLog {
 public:
  RunLog() = default;  // a log that writes nowhere
  // Appends when `append` (a resumed run), else truncates. IOError when the file cannot be opened.
  explicit RunLog(const std::filesystem::path& path, bool append = false);
  ~RunLog();
  RunLog(RunLog&& other) noexcept;
  RunLog& operator=(RunLog&& other) noexcept;
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  void write(const nlohmann::json& record);
  bool is_open() const { return file_ != nullptr; }

 private:
  FILE* file_ = nullptr;
};

}  // namespace graft::train
