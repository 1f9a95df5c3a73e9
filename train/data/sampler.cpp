// Batch sampling. Each epoch draws from its own Philox generator, seeded by mixing (seed, epoch),
// so an epoch's batches never depend on how many epochs ran before in this process.
#include "train/data/sampler.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "tensor/error.h"
#include "tensor/factory.h"
#include "train/data/dataset.h"

namespace graft::data {

namespace {

// SplitMix64's finaliser: a bijection that spreads nearby (seed, epoch) pairs far apart.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

template <class T>
std::vector<T> permuted(const std::vector<T>& items, Generator& generator) {
  const std::vector<int64_t> order = randperm(static_cast<int64_t>(items.size()), &generator).to_vector<int64_t>();
  std::vector<T> out;
  out.reserve(items.size());
  for (int64_t i : order) out.push_back(items[static_cast<size_t>(i)]);
  return out;
}

// Cuts `order` into batches of batch_size, the last one possibly smaller.
void cut(const std::vector<int64_t>& order, size_t begin, size_t end, int64_t batch_size,
         std::vector<std::vector<int64_t>>& batches) {
  for (size_t start = begin; start < end; start += static_cast<size_t>(batch_size)) {
    const size_t stop = std::min(end, start + static_cast<size_t>(batch_size));
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                         order.begin() + static_cast<std::ptrdiff_t>(stop));
  }
}

std::vector<int64_t> range(int64_t n) {
  if (n < 0) throw ValueError("BatchSampler: the number of examples must be non-negative, got " + std::to_string(n));
  std::vector<int64_t> indices(static_cast<size_t>(n));
  std::iota(indices.begin(), indices.end(), int64_t{0});
  return indices;
}

}  // namespace

BatchSampler::BatchSampler(int64_t n, BatchSamplerOptions options) : BatchSampler(range(n), std::move(options)) {}

BatchSampler::BatchSampler(std::vector<int64_t> indices, BatchSamplerOptions options)
    : indices_(std::move(indices)), options_(std::move(options)) {
  if (options_.batch_size <= 0)
    throw ValueError("BatchSampler: batch_size must be positive, got " + std::to_string(options_.batch_size));
  if (options_.pool_batches <= 0)
    throw ValueError("BatchSampler: pool_batches must be positive, got " + std::to_string(options_.pool_batches));
  for (size_t i = 0; i < options_.lengths.size(); ++i)
    if (options_.lengths[i] < 0)
      throw ValueError("BatchSampler: lengths[" + std::to_string(i) + "] is " + std::to_string(options_.lengths[i]) +
                       "; expected a non-negative length");
  const bool bucketing = !options_.lengths.empty();
  for (size_t i = 0; i < indices_.size(); ++i) {
    const int64_t index = indices_[i];
    if (index < 0 || (bucketing && index >= static_cast<int64_t>(options_.lengths.size())))
      throw IndexError("BatchSampler: example index " + std::to_string(index) + " (at position " + std::to_string(i) +
                       ") is out of range" +
                       (bucketing ? " for " + std::to_string(options_.lengths.size()) + " lengths" : std::string()));
  }
}

int64_t BatchSampler::batches_per_epoch() const {
  const int64_t n = num_examples(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<std::vector<int64_t>> BatchSampler::batches(int64_t epoch) const {
  if (epoch < 0) throw ValueError("BatchSampler::batches: epoch must be non-negative, got " + std::to_string(epoch));
  Generator generator(mix(options_.seed ^ mix(static_cast<uint64_t>(epoch))));
  const std::vector<int64_t> order = options_.shuffle ? permuted(indices_, generator) : indices_;
  const int64_t batch_size = options_.batch_size;
  std::vector<std::vector<int64_t>> batches;
  batches.reserve(static_cast<size_t>(batches_per_epoch()) + 1);

  if (options_.lengths.empty()) {
    cut(order, 0, order.size(), batch_size, batches);
  } else {
    const auto pool = static_cast<size_t>(options_.pool_batches * batch_size);
    std::vector<int64_t> sorted = order;
    for (size_t begin = 0; begin < sorted.size(); begin += pool) {
      const size_t end = std::min(sorted.size(), begin + pool);
      // Stable: equal lengths keep their shuffled order, so ties are broken at random too.
      std::stable_sort(sorted.begin() + static_cast<std::ptrdiff_t>(begin),
                       sorted.begin() + static_cast<std::ptrdiff_t>(end), [&](int64_t a, int64_t b) {
                         return options_.lengths[static_cast<size_t>(a)] < options_.lengths[static_cast<size_t>(b)];
                       });
      cut(sorted, begin, end, batch_size, batches);
    }
  }
  // Only the very last batch can be short (pools are whole multiples of batch_size).
  if (options_.drop_last && !batches.empty() && static_cast<int64_t>(batches.back().size()) < batch_size)
    batches.pop_back();
  if (options_.shuffle && !options_.lengths.empty()) batches = permuted(batches, generator);
  return batches;
}

std::vector<int64_t> example_lengths(const Dataset& dataset) {
  std::vector<int64_t> lengths(static_cast<size_t>(dataset.size()));
  for (int64_t i = 0; i < dataset.size(); ++i) lengths[static_cast<size_t>(i)] = dataset.length(i);
  return lengths;
}

}  // namespace graft::data
