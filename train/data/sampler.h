// Which examples go into which batch, epoch by epoch. The batches of an epoch are a pure function
// of (seed, epoch): the trainer stores (epoch, batch index) in a checkpoint and, on resume, asks
// for the same epoch again and skips the batches it already ran, reproducing the uninterrupted run.
//
// Length bucketing (as Hugging Face's group_by_length / LengthGroupedSampler): shuffle, cut into
// pools of pool_batches * batch_size examples, sort each pool by length, cut into batches, then
// shuffle the batch order. Batches then hold similar lengths (little padding) but stay random.
#pragma once

#include <cstdint>
#include <vector>

namespace graft::data {

class Dataset;

struct BatchSamplerOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  uint64_t seed = 0;
  bool drop_last = false;  // drop the last, smaller batch (when the examples do not fill it)
  // Bucketing: lengths[i] is the length of dataset example i (indexed by example index, not by
  // position in the sampler's list). Empty: no bucketing.
  std::vector<int64_t> lengths;
  int64_t pool_batches = 50;  // batches per pool when bucketing
};

class BatchSampler {
 public:
  // Over examples 0..n-1, or over a list of example indices (e.g. one part of a split).
  BatchSampler(int64_t n, BatchSamplerOptions options);
  BatchSampler(std::vector<int64_t> indices, BatchSamplerOptions options);

  // The batches of `epoch` (>= 0), each a list of example indices. Without shuffling they come in
  // list order (sorted by length within pools when bucketing); the same (seed, epoch) always gives
  // the same batches.
  std::vector<std::vector<int64_t>> batches(int64_t epoch) const;
  int64_t batches_per_epoch() const;
  int64_t num_examples() const { return static_cast<int64_t>(indices_.size()); }
  const std::vector<int64_t>& indices() const { return indices_; }
  const BatchSamplerOptions& options() const { return options_; }

 private:
  std::vector<int64_t> indices_;
  BatchSamplerOptions options_;
};

// dataset.length(i) for every example, for BatchSamplerOptions::lengths.
std::vector<int64_t> example_lengths(const Dataset& dataset);

}  // namespace graft::data
