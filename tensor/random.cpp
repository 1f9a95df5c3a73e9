#include "tensor/random.h"

namespace graft {

Generator& Generator::operator=(const Generator& other) {
  if (this == &other) return *this;
  const uint64_t s = other.seed(), o = other.offset();
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = s;
  offset_ = o;
  return *this;
}

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  offset_ = 0;
}
uint64_t Generator::seed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seed_;
}
uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return offset_;
}
void Generator::set_offset(uint64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  offset_ = offset;
}
uint64_t Generator::reserve(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t first = offset_;
  offset_ += static_cast<uint64_t>((n + 3) / 4);
  return first;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace graft
