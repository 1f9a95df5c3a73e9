// Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over the
// target, fsync the directory. A reader (or a restart after a crash) sees either the old file or
// the new one, never a half-written mix. Checkpoints and safetensors saves go through here.
#pragma once

#include <filesystem>
#include <string_view>

namespace graft::nn {

struct AtomicWriteOptions {
  // Test hook: fail (throw IOError) after the temp file is written and fsynced but before the
  // rename, as a crash at that moment would. Lets tests prove the previous file survives.
  bool fail_before_rename = false;
};

// Replaces the file at `path` with `bytes`. The temp file is `<name>.tmp.<pid>.<n>` in the same
// directory (same file system, so the rename is atomic). On any failure the temp file is removed,
// the previous file at `path` is untouched, and IOError names the path and the system's reason.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                       const AtomicWriteOptions& options = {});

}  // namespace graft::nn
