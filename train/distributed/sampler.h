// DistributedBatchSampler: each rank's share of the global batches of an epoch.
//
// The global order is data::BatchSampler's with a global batch of batch_size * world_size
// examples, a pure function of (seed, epoch) as in one process. Rank r takes positions
// [r * batch_size, (r + 1) * batch_size) of every global batch, so the ranks' shards are disjoint
// and together they are exactly the examples one process sees with batch_size * world_size, batch
// by batch. A last global batch too short to give every rank batch_size examples is split evenly
// after padding it by repeating its own examples from its start (as torch's DistributedSampler
// pads the epoch): every rank then has the same number of examples, so averaging the ranks'
// mean gradients gives the mean over the padded batch. With drop_last it is dropped instead.
#pragma once

#include <cstdint>
#include <vector>

#include "train/data/sampler.h"

namespace graft::train::distributed {

class DistributedBatchSampler {
 public:
  // options.batch_size is the per-rank batch.
  DistributedBatchSampler(int64_t n, data::BatchSamplerOptions options, int rank, int world_size);

  // This rank's batches of `epoch`, one per global batch.
  std::vector<std::vector<int64_t>> batches(int64_t epoch) const;
  // Every rank's batches of global batch order (for checks and tests): [rank][batch].
  std::vector<std::vector<std::vector<int64_t>>> all_batches(int64_t epoch) const;
  int64_t batches_per_epoch() const { return global_.batches_per_epoch(); }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Rank r's part of one global batch (padded as above when short).
  static std::vector<int64_t> shard(const std::vector<int64_t>& global_batch, int rank, int world_size);

 private:
  data::BatchSampler global_;
  int rank_, world_size_;
};

// Contiguous, disjoint, covering shares of n examples for evaluation (no padding: the results
// are gathered exactly): rank r gets [begin, end).
std::pair<int64_t, int64_t> evaluation_shard(int64_t n, int rank, int world_size);

}  // namespace graft::train::distributed
