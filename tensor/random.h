// Random number generation: a Philox4x32-10 counter-based generator. A draw of n numbers uses
// counters [offset, offset + ceil(n / 4)) and advances the offset, so results depend on the seed
// and the order of draws only, never on threads or device.
#pragma once

#include <cstdint>
#include <mutex>

namespace graft {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  Generator(const Generator& other) : seed_(other.seed()), offset_(other.offset()) {}
  Generator& operator=(const Generator& other);

  void manual_seed(uint64_t seed);
  uint64_t seed() const;
  uint64_t offset() const;  // in counters; saved with checkpoints to resume the stream
  void set_offset(uint64_t offset);
  // Reserves counters for n numbers; returns the first counter.
  uint64_t reserve(int64_t n);

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide default generator (as torch's default), used when none is passed.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace graft
