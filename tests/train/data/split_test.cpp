// Splits: sizes by largest remainder, disjoint parts covering 0..n-1, the same split for the same
// seed, and stratified parts within 1 of each class's ideal count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "tensor/error.h"
#include "train/data/split.h"

using namespace graft;
using namespace graft::data;

namespace {

void expect_partition(const std::vector<std::vector<int64_t>>& parts, int64_t n) {
  std::vector<int64_t> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(static_cast<int64_t>(all.size()), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(all[static_cast<size_t>(i)], i) << "not a partition of 0..n-1";
}

std::vector<int64_t> sizes_of(const std::vector<std::vector<int64_t>>& parts) {
  std::vector<int64_t> sizes;
  for (const auto& p : parts) sizes.push_back(static_cast<int64_t>(p.size()));
  return sizes;
}

}  // namespace

TEST(Split, SizesByLargestRemainder) {
  EXPECT_EQ(split_sizes(10, {0.8, 0.1, 0.1}), (std::vector<int64_t>{8, 1, 1}));
  EXPECT_EQ(split_sizes(11, {0.8, 0.1, 0.1}), (std::vector<int64_t>{9, 1, 1}));   // 8.8 rounds up first
  EXPECT_EQ(split_sizes(7, {1.0 / 3, 1.0 / 3, 1.0 / 3}), (std::vector<int64_t>{3, 2, 2}));  // ties: earlier part
  EXPECT_EQ(split_sizes(0, {0.5, 0.5}), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(split_sizes(5, {1.0, 0.0}), (std::vector<int64_t>{5, 0}));
  for (int64_t n : {1, 2, 3, 99, 1001, 12808}) {
    const auto s = split_sizes(n, {0.7, 0.15, 0.15});
    EXPECT_EQ(s[0] + s[1] + s[2], n);
    for (size_t k = 0; k < 3; ++k) EXPECT_LT(std::abs(static_cast<double>(s[k]) - n * std::vector<double>{0.7, 0.15, 0.15}[k]), 1.0);
  }
}

TEST(Split, DisjointCoveringAndDeterministic) {
  const auto a = split_indices(1000, {0.8, 0.1, 0.1}, 42);
  EXPECT_EQ(sizes_of(a), (std::vector<int64_t>{800, 100, 100}));
  expect_partition(a, 1000);
  EXPECT_EQ(a, split_indices(1000, {0.8, 0.1, 0.1}, 42));
  const auto b = split_indices(1000, {0.8, 0.1, 0.1}, 43);
  EXPECT_NE(a, b);
  expect_partition(b, 1000);
  EXPECT_FALSE(std::is_sorted(a[0].begin(), a[0].end()));  // shuffled, not a prefix
}

TEST(Split, PinnedValuesForSeed) {
  // The split is a function of the seed alone (Philox randperm), so these values hold on every
  // machine; a change here silently changes every experiment's validation set.
  EXPECT_EQ(split_indices(10, {0.5, 0.3, 0.2}, 7),
            (std::vector<std::vector<int64_t>>{{5, 6, 3, 8, 2}, {4, 1, 7}, {9, 0}}));
}

TEST(Split, BadRatios) {
  EXPECT_THROW(split_indices(10, {0.5, 0.4}, 0), ValueError);
  EXPECT_THROW(split_indices(10, {}, 0), ValueError);
  EXPECT_THROW(split_indices(10, {1.5, -0.5}, 0), ValueError);
  EXPECT_THROW(split_indices(10, {NAN, 1.0}, 0), ValueError);
  EXPECT_THROW(split_indices(-1, {1.0}, 0), ValueError);
  EXPECT_NO_THROW(split_indices(10, {0.8, 0.1, 0.1 + 5e-7}, 0));  // within 1e-6
  try {
    split_indices(10, {0.5, 0.4}, 0);
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("sum to 0.9"), std::string::npos) << e.what();
  }
}

TEST(StratifiedSplit, ClassCountsWithinOneOfIdeal) {
  // Imbalanced classes: 700 / 200 / 73 / 20 / 7 examples, labels interleaved.
  std::vector<int64_t> labels;
  const std::vector<int64_t> counts{700, 200, 73, 20, 7};
  for (size_t c = 0; c < counts.size(); ++c)
    for (int64_t i = 0; i < counts[c]; ++i) labels.push_back(static_cast<int64_t>(c) * 10 - 5);  // any i64 values
  std::rotate(labels.begin(), labels.begin() + 333, labels.end());
  const std::vector<double> ratios{0.7, 0.2, 0.1};
  const auto parts = stratified_split_indices(labels, ratios, 3);
  expect_partition(parts, static_cast<int64_t>(labels.size()));
  EXPECT_EQ(sizes_of(parts), split_sizes(static_cast<int64_t>(labels.size()), ratios));
  for (size_t k = 0; k < parts.size(); ++k) {
    std::map<int64_t, int64_t> have;
    for (int64_t i : parts[k]) ++have[labels[static_cast<size_t>(i)]];
    for (size_t c = 0; c < counts.size(); ++c) {
      const double ideal = static_cast<double>(counts[c]) * ratios[k];
      EXPECT_LE(std::abs(static_cast<double>(have[static_cast<int64_t>(c) * 10 - 5]) - ideal), 1.0)
          << "part " << k << " class " << c;
    }
  }
  EXPECT_EQ(parts, stratified_split_indices(labels, ratios, 3));
  EXPECT_NE(parts, stratified_split_indices(labels, ratios, 4));
}

TEST(StratifiedSplit, ManySmallClassesStillFillEveryPart) {
  // 10 classes of 5 at 0.9 / 0.1: each class's ideal is 4.5 / 0.5, so class-by-class rounding
  // would put every leftover in the first part and leave the second empty.
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < 10; ++c)
    for (int i = 0; i < 5; ++i) labels.push_back(c);
  const auto parts = stratified_split_indices(labels, {0.9, 0.1}, 1);
  EXPECT_EQ(sizes_of(parts), (std::vector<int64_t>{45, 5}));
  expect_partition(parts, 50);
  for (size_t k = 0; k < 2; ++k) {
    std::map<int64_t, int64_t> have;
    for (int64_t i : parts[k]) ++have[labels[static_cast<size_t>(i)]];
    for (int64_t c = 0; c < 10; ++c) EXPECT_LE(std::abs(have[c] - 5 * (k == 0 ? 0.9 : 0.1)), 1.0);
  }
}

TEST(StratifiedSplit, ExactSizesAcrossRandomShapes) {
  // Small random class profiles and three or four parts: sizes match split_sizes, counts stay within 1.
  uint64_t state = 12345;
  auto next = [&] { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int64_t> labels;
    const int64_t classes = 1 + static_cast<int64_t>(next() % 8);
    for (int64_t c = 0; c < classes; ++c)
      for (uint64_t i = 0, n = next() % 12; i < n; ++i) labels.push_back(c);
    const std::vector<double> ratios = trial % 2 ? std::vector<double>{0.6, 0.25, 0.15}
                                                 : std::vector<double>{0.4, 0.3, 0.2, 0.1};
    const auto parts = stratified_split_indices(labels, ratios, static_cast<uint64_t>(trial));
    expect_partition(parts, static_cast<int64_t>(labels.size()));
    EXPECT_EQ(sizes_of(parts), split_sizes(static_cast<int64_t>(labels.size()), ratios)) << "trial " << trial;
    std::map<int64_t, int64_t> total;
    for (int64_t l : labels) ++total[l];
    for (size_t k = 0; k < parts.size(); ++k) {
      std::map<int64_t, int64_t> have;
      for (int64_t i : parts[k]) ++have[labels[static_cast<size_t>(i)]];
      for (const auto& [c, n] : total)
        EXPECT_LE(std::abs(static_cast<double>(have[c]) - static_cast<double>(n) * ratios[k]), 1.0);
    }
  }
}

TEST(StratifiedSplit, EdgeCases) {
  EXPECT_EQ(stratified_split_indices({}, {0.5, 0.5}, 0), (std::vector<std::vector<int64_t>>{{}, {}}));
  const auto one = stratified_split_indices({3}, {0.8, 0.2}, 0);
  EXPECT_EQ(one, (std::vector<std::vector<int64_t>>{{0}, {}}));
  EXPECT_THROW(stratified_split_indices({0, 1}, {0.5, 0.6}, 0), ValueError);
}
