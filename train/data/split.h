// Deterministic train/validation/test splits of example indices. The permutation comes from a
// Philox Generator(seed) via randperm, so a seed gives the same split on every machine and
// thread count (unlike std::shuffle, whose distributions differ between standard libraries).
#pragma once

#include <cstdint>
#include <vector>

namespace graft::data {

// Part sizes for `total` items: floor(total * ratio) each, the remainder handed out by largest
// fractional part (ties to the earlier part), so they sum to `total` exactly.
std::vector<int64_t> split_sizes(int64_t total, const std::vector<double>& ratios);

// Splits 0..n-1 into ratios.size() disjoint parts covering all of them, each in random order.
// Ratios must be finite, non-negative and sum to 1 within 1e-6, else ValueError.
// e.g. split_indices(n, {0.8, 0.1, 0.1}, 42) -> {train, val, test}.
std::vector<std::vector<int64_t>> split_indices(int64_t n, const std::vector<double>& ratios, uint64_t seed);

// As split_indices over 0..labels.size()-1, keeping each class's proportion in every part: part k
// holds n_class * ratio_k examples of each class, rounded up or down (within 1 of the ideal), and
// the part sizes equal split_sizes(n, ratios) whenever such a rounding exists (it always does for
// two parts). Classes are shuffled within themselves, dealt out, then each part is shuffled.
std::vector<std::vector<int64_t>> stratified_split_indices(const std::vector<int64_t>& labels,
                                                           const std::vector<double>& ratios, uint64_t seed);

}  // namespace graft::data
