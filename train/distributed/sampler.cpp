#include "train/distributed/sampler.h"

#include <string>

#include "tensor/error.h"

namespace graft::train::distributed {

namespace {

data::BatchSamplerOptions global_options(data::BatchSamplerOptions options, int world_size) {
  if (world_size < 1) throw ValueError("DistributedBatchSampler: world_size must be >= 1");
  if (options.batch_size < 1) throw ValueError("DistributedBatchSampler: batch_size must be >= 1");
  options.batch_size *= world_size;
  return options;
}

}  // namespace

DistributedBatchSampler::DistributedBatchSampler(int64_t n, data::BatchSamplerOptions options, int rank,
                                                 int world_size)
    : global_(n, global_options(options, world_size)), rank_(rank), world_size_(world_size) {
  if (rank < 0 || rank >= world_size) {
    throw ValueError("DistributedBatchSampler: rank " + std::to_string(rank) + " is not in a world of " +
                     std::to_string(world_size));
  }
}

std::vector<int64_t> DistributedBatchSampler::shard(const std::vector<int64_t>& global_batch, int rank,
                                                    int world_size) {
  if (global_batch.empty()) throw ValueError("DistributedBatchSampler: an empty global batch");
  const auto n = static_cast<int64_t>(global_batch.size());
  const int64_t per_rank = (n + world_size - 1) / world_size;  // the padded share
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k) {
    const int64_t position = static_cast<int64_t>(rank) * per_rank + k;
    out.push_back(global_batch[static_cast<size_t>(position % n)]);
  }
  return out;
}

std::vector<std::vector<int64_t>> DistributedBatchSampler::batches(int64_t epoch) const {
  std::vector<std::vector<int64_t>> out;
  for (const auto& global : global_.batches(epoch)) out.push_back(shard(global, rank_, world_size_));
  return out;
}

std::vector<std::vector<std::vector<int64_t>>> DistributedBatchSampler::all_batches(int64_t epoch) const {
  std::vector<std::vector<std::vector<int64_t>>> out(static_cast<size_t>(world_size_));
  for (const auto& global : global_.batches(epoch)) {
    for (int r = 0; r < world_size_; ++r) out[static_cast<size_t>(r)].push_back(shard(global, r, world_size_));
  }
  return out;
}

std::pair<int64_t, int64_t> evaluation_shard(int64_t n, int rank, int world_size) {
  const int64_t base = n / world_size, extra = n % world_size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace graft::train::distributed
