// BatchSampler: batches are a function of (seed, epoch) only, every example appears once per
// epoch, drop_last, subsets of indices, and length bucketing that groups similar lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "tensor/error.h"
#include "train/data/collate.h"
#include "train/data/sampler.h"

using namespace graft;
using namespace graft::data;

namespace {

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<int64_t> range(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

// Mean over batches of (longest - shortest) length in the batch.
double mean_spread(const std::vector<std::vector<int64_t>>& batches, const std::vector<int64_t>& lengths) {
  double total = 0;
  for (const auto& b : batches) {
    int64_t lo = INT64_MAX, hi = 0;
    for (int64_t i : b) lo = std::min(lo, lengths[static_cast<size_t>(i)]), hi = std::max(hi, lengths[static_cast<size_t>(i)]);
    total += static_cast<double>(hi - lo);
  }
  return total / static_cast<double>(batches.size());
}

}  // namespace

TEST(BatchSampler, SequentialWithoutShuffle) {
  const BatchSampler s(10, {.batch_size = 4, .shuffle = false});
  EXPECT_EQ(s.batches_per_epoch(), 3);
  EXPECT_EQ(s.batches(0), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}));
  EXPECT_EQ(s.batches(5), s.batches(0));
}

TEST(BatchSampler, DropLast) {
  const BatchSampler s(10, {.batch_size = 4, .shuffle = true, .seed = 1, .drop_last = true});
  EXPECT_EQ(s.batches_per_epoch(), 2);
  const auto b = s.batches(0);
  ASSERT_EQ(b.size(), 2u);
  for (const auto& batch : b) EXPECT_EQ(batch.size(), 4u);
  EXPECT_EQ(BatchSampler(3, {.batch_size = 4, .drop_last = true}).batches(0).size(), 0u);
  EXPECT_EQ(BatchSampler(8, {.batch_size = 4, .drop_last = true}).batches(0).size(), 2u);  // exact fit keeps all
}

TEST(BatchSampler, DeterministicInSeedAndEpoch) {
  const BatchSamplerOptions options{.batch_size = 8, .shuffle = true, .seed = 42};
  const BatchSampler a(100, options), b(100, options);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto batches = a.batches(epoch);
    EXPECT_EQ(batches, b.batches(epoch));  // another sampler, same (seed, epoch)
    EXPECT_EQ(batches, a.batches(epoch));  // asked again, e.g. when resuming mid-epoch
    EXPECT_EQ(static_cast<int64_t>(batches.size()), a.batches_per_epoch());
    EXPECT_EQ(sorted(flatten(batches)), range(100));  // each example once per epoch
  }
  EXPECT_NE(a.batches(0), a.batches(1));
  EXPECT_NE(a.batches(1), a.batches(2));
  EXPECT_NE(a.batches(0), BatchSampler(100, {.batch_size = 8, .shuffle = true, .seed = 43}).batches(0));
  // Resuming: a fresh sampler asked for epoch 1 directly gives what the run saw after epoch 0.
  EXPECT_EQ(BatchSampler(100, options).batches(1), a.batches(1));
}

TEST(BatchSampler, PinnedValuesForSeed) {
  // Batches depend on (seed, epoch) alone, on every machine: a checkpoint taken on one resumes on another.
  EXPECT_EQ(BatchSampler(10, {.batch_size = 4, .shuffle = true, .seed = 7}).batches(1),
            (std::vector<std::vector<int64_t>>{{5, 4, 3, 2}, {9, 8, 1, 6}, {0, 7}}));
}

TEST(BatchSampler, OverASubsetOfIndices) {
  const std::vector<int64_t> subset{3, 17, 5, 40, 22, 9, 11};
  const BatchSampler s(subset, {.batch_size = 3, .shuffle = true, .seed = 9});
  EXPECT_EQ(s.batches_per_epoch(), 3);
  EXPECT_EQ(sorted(flatten(s.batches(0))), sorted(subset));
  EXPECT_EQ(s.num_examples(), 7);
}

TEST(BatchSampler, BucketingGroupsSimilarLengths) {
  const int64_t n = 4000;
  std::vector<int64_t> lengths(static_cast<size_t>(n));
  uint64_t state = 7;
  for (auto& l : lengths) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    l = 1 + static_cast<int64_t>((state >> 33) % 500);
  }
  const BatchSampler plain(n, {.batch_size = 16, .shuffle = true, .seed = 5});
  const BatchSampler bucketed(n, {.batch_size = 16, .shuffle = true, .seed = 5, .lengths = lengths, .pool_batches = 50});
  const auto pb = plain.batches(0), bb = bucketed.batches(0);
  EXPECT_EQ(static_cast<int64_t>(bb.size()), bucketed.batches_per_epoch());
  EXPECT_EQ(sorted(flatten(bb)), range(n));
  const double random_spread = mean_spread(pb, lengths), bucket_spread = mean_spread(bb, lengths);
  EXPECT_GT(random_spread, 300.0);  // uniform 1..500 in batches of 16: about 440
  EXPECT_LT(bucket_spread, random_spread / 20) << "random " << random_spread << ", bucketed " << bucket_spread;
  // Batch order is shuffled: consecutive batches are not in increasing length.
  int64_t increasing = 0;
  for (size_t i = 1; i < bb.size(); ++i)
    increasing += lengths[static_cast<size_t>(bb[i][0])] >= lengths[static_cast<size_t>(bb[i - 1][0])];
  EXPECT_LT(increasing, static_cast<int64_t>(bb.size()) * 3 / 4);
  EXPECT_EQ(bb, bucketed.batches(0));
  EXPECT_NE(bb, bucketed.batches(1));
}

TEST(BatchSampler, BucketingWithDropLastAndNoShuffle) {
  const std::vector<int64_t> lengths{5, 1, 4, 2, 3, 9, 7};
  const BatchSampler s(7, {.batch_size = 2, .shuffle = false, .drop_last = true, .lengths = lengths, .pool_batches = 2});
  // Pools of 4 in list order, each sorted by length: {1, 2, 4, 5} then {3, 7, 9} -> the last batch {9} dropped.
  EXPECT_EQ(s.batches(0), (std::vector<std::vector<int64_t>>{{1, 3}, {2, 0}, {4, 6}}));
  EXPECT_EQ(s.batches_per_epoch(), 3);
}

TEST(BatchSampler, LengthsFromADataset) {
  const SequenceDataset ds({{1, 2, 3}, {4}, {5, 6, 7, 8, 9}}, std::vector<int64_t>{0, 1, 0}, {.max_length = 4});
  EXPECT_EQ(example_lengths(ds), (std::vector<int64_t>{3, 1, 4}));
}

TEST(BatchSampler, BadOptions) {
  EXPECT_THROW(BatchSampler(10, {.batch_size = 0}), ValueError);
  EXPECT_THROW(BatchSampler(-1, {}), ValueError);
  EXPECT_THROW(BatchSampler(10, {.lengths = {1, 2, 3}}), IndexError);  // index 3 has no length
  EXPECT_THROW(BatchSampler(std::vector<int64_t>{0, -2}, {}), IndexError);
  EXPECT_THROW(BatchSampler(2, {.lengths = {1, -1}}), ValueError);
  EXPECT_THROW(BatchSampler(2, {.pool_batches = 0}), ValueError);
  EXPECT_THROW(BatchSampler(2, {}).batches(-1), ValueError);
}
