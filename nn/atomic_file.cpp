#include "nn/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "tensor/error.h"

namespace graft::nn {
namespace {

[[noreturn]] void throw_io(const std::string& what, const std::filesystem::path& path, int error) {
  throw IOError("write_file_atomic: " + what + " '" + path.string() + "': " + std::strerror(error));
}

// Closes the descriptor and removes the temp file unless released: every early exit cleans up.
class TempFile {
 public:
  explicit TempFile(std::filesystem::path path) : path_(std::move(path)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!released_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int& fd() { return fd_; }
  const std::filesystem::path& path() const { return path_; }
  void release() { released_ = true; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool released_ = false;
};

void write_all(int fd, std::string_view bytes, const std::filesystem::path& temp) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot write temp file", temp, errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_io("cannot open directory to fsync", dir, errno);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  // Some file systems cannot fsync a directory (EINVAL); the rename itself has still happened.
  if (rc != 0 && error != EINVAL) throw_io("cannot fsync directory", dir, error);
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes, const AtomicWriteOptions& options) {
  if (path.empty() || !path.has_filename()) throw IOError("write_file_atomic: '" + path.string() + "' names no file");
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  // The pid keeps processes apart, the counter keeps threads of one process apart.
  static std::atomic<unsigned long> counter{0};
  TempFile temp(dir / (path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                       std::to_string(counter.fetch_add(1))));

  temp.fd() = ::open(temp.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (temp.fd() < 0) {
    temp.release();  // nothing was created (or it is not ours to remove)
    throw_io("cannot create temp file for", path, errno);
  }
  write_all(temp.fd(), bytes, temp.path());
  if (::fsync(temp.fd()) != 0) throw_io("cannot fsync temp file", temp.path(), errno);
  const int fd = temp.fd();
  temp.fd() = -1;
  if (::close(fd) != 0) throw_io("cannot close temp file", temp.path(), errno);

  if (options.fail_before_rename) throw IOError("write_file_atomic: '" + path.string() + "': simulated crash before rename (test hook)");
  if (::rename(temp.path().c_str(), path.c_str()) != 0) throw_io("cannot rename temp file over", path, errno);
  temp.release();
  fsync_directory(dir);
}

}  // namespace graft::nn
