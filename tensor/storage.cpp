#include "tensor/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>

#include "kernels/memory/cuda_memory.h"
#include "tensor/error.h"

namespace graft {

namespace {

// Freed large CPU blocks wait here for a request of exactly their size. A fresh multi-megabyte
// buffer costs a page fault and a zeroed page per 4 KiB on first touch (6-13% of a BERT training
// step), and a training loop asks for the same sizes every step. Bounded in total; emptied at
// exit (then later frees go straight to free()); off under AddressSanitizer so that reuse never
// hides a use-after-free. Holds no data that matters: what comes out is uninitialised memory.
class BlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t(1) << 20;   // smaller blocks: malloc is cheap
  static constexpr std::size_t kMaxBytes = std::size_t(1) << 30;   // the most it ever holds

  static BlockCache& instance() {
    static BlockCache cache;
    return cache;
  }
  static bool enabled() {
#if defined(__SANITIZE_ADDRESS__)
    return false;
#else
    return !closed_.load(std::memory_order_acquire);
#endif
  }
  void* take(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    // The most recently freed block of the size (a multimap keeps equal keys in insertion
    // order): it is the one most likely still in the CPU caches.
    auto it = blocks_.upper_bound(bytes);
    if (it == blocks_.begin() || std::prev(it)->first != bytes) return nullptr;
    --it;
    void* p = it->second;
    blocks_.erase(it);
    held_ -= bytes;
    return p;
  }
  void give(void* p, std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_ + bytes <= kMaxBytes) {
        blocks_.emplace(bytes, p);
        held_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  // Frees every held block (at exit, and before an allocation is called out of memory).
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, p] : blocks_) std::free(p);
    blocks_.clear();
    held_ = 0;
  }
  ~BlockCache() {
    closed_.store(true, std::memory_order_release);
    clear();
  }

 private:
  static inline std::atomic<bool> closed_{false};  // trivially destructible: valid after ~BlockCache
  std::mutex mutex_;
  std::multimap<std::size_t, void*> blocks_;
  std::size_t held_ = 0;
};

void release_cpu_block(void* p, std::size_t padded) {
  if (padded >= BlockCache::kMinBytes && BlockCache::enabled()) BlockCache::instance().give(p, padded);
  else std::free(p);
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(std::size_t nbytes, Device device) {
  if (device.is_cpu()) {
    // Round up to the alignment, as aligned_alloc requires; at least one line so data() != null.
    const std::size_t padded = ((nbytes + 63) / 64) * 64 + (nbytes == 0 ? 64 : 0);
    void* data = nullptr;
    if (padded >= BlockCache::kMinBytes && BlockCache::enabled()) data = BlockCache::instance().take(padded);
    if (!data) data = std::aligned_alloc(64, padded);
    if (!data && BlockCache::enabled()) {  // memory held for reuse is better spent on this request
      BlockCache::instance().clear();
      data = std::aligned_alloc(64, padded);
    }
    if (!data) throw Error("out of memory: could not allocate " + std::to_string(nbytes) + " bytes on the CPU");
    return std::make_shared<Storage>(data, nbytes, device, [padded](void* p) { release_cpu_block(p, padded); });
  }
  if (device.index < 0 || device.index >= kernels::cuda_device_count_raw()) {
    std::string why;
    if (!kernels::cuda_compiled()) why = ": graft was built without CUDA";
    else why = ": " + std::to_string(kernels::cuda_device_count_raw()) + " CUDA device(s) visible";
    throw DeviceError("cannot allocate on " + device.str() + why);
  }
  std::string error;
  void* data = kernels::cuda_allocate(nbytes, device.index, &error);
  if (!data) throw DeviceError("allocating " + std::to_string(nbytes) + " bytes on " + device.str() + ": " + error);
  const int index = device.index;
  return std::make_shared<Storage>(data, nbytes, device, [index](void* p) { kernels::cuda_release(p, index); });
}

std::shared_ptr<Storage> Storage::wrap(void* data, std::size_t nbytes, Device device, Deleter deleter) {
  return std::make_shared<Storage>(data, nbytes, device, std::move(deleter));
}

Storage::~Storage() {
  if (deleter_) deleter_(data_);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index)
    throw DeviceError("copy between " + src_device.str() + " and " + dst_device.str() +
                      " is not supported yet: go through the CPU");
  const int kind = src_device.is_cpu() ? 0 : dst_device.is_cpu() ? 1 : 2;
  const int index = dst_device.is_cuda() ? dst_device.index : src_device.index;
  std::string error;
  if (!kernels::cuda_copy(dst, src, nbytes, kind, index, &error))
    throw DeviceError("copy " + src_device.str() + " -> " + dst_device.str() + ": " + error);
}

}  // namespace graft
