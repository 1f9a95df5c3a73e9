// Random splits. Stratification is a small rounding problem: class c should put n_c * r_k
// examples in part k. Each count is rounded down, then each class hands its leftover examples
// (fewer than the number of parts) to distinct parts, so that every count stays within 1 of its
// ideal, while each part receives exactly what it still lacks of its overall size. The hand-out
// is a bipartite b-matching (classes x parts, one extra per cell): greedy by largest fractional
// part first, then augmenting paths for what the greedy pass left.
#include "train/data/split.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>
#include <string>

#include "tensor/error.h"
#include "tensor/factory.h"

namespace graft::data {

namespace {

// Ratios normalised by their sum after checking that it is 1 within 1e-6.
std::vector<double> checked_ratios(const char* op, const std::vector<double>& ratios) {
  if (ratios.empty()) throw ValueError(std::string(op) + ": ratios must not be empty");
  double sum = 0;
  for (size_t k = 0; k < ratios.size(); ++k) {
    if (!std::isfinite(ratios[k]) || ratios[k] < 0)
      throw ValueError(std::string(op) + ": ratio " + std::to_string(k) + " is " + std::to_string(ratios[k]) +
                       "; expected a finite, non-negative number");
    sum += ratios[k];
  }
  if (std::abs(sum - 1.0) > 1e-6)
    throw ValueError(std::string(op) + ": ratios sum to " + std::to_string(sum) + "; expected 1 (within 1e-6)");
  std::vector<double> out = ratios;
  for (double& r : out) r /= sum;
  return out;
}

std::vector<int64_t> largest_remainder(int64_t total, const std::vector<double>& ratios) {
  const size_t parts = ratios.size();
  std::vector<int64_t> sizes(parts);
  std::vector<double> frac(parts);
  int64_t assigned = 0;
  for (size_t k = 0; k < parts; ++k) {
    const double quota = static_cast<double>(total) * ratios[k];
    sizes[k] = static_cast<int64_t>(std::floor(quota));
    frac[k] = quota - std::floor(quota);
    assigned += sizes[k];
  }
  std::vector<size_t> order(parts);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return frac[a] > frac[b]; });
  for (size_t i = 0; assigned < total; i = (i + 1) % parts, ++assigned) ++sizes[order[i]];
  // Rounding noise can only overshoot by a unit or so: take it back from the smallest remainders.
  for (size_t i = parts; assigned > total;) {
    i = (i == 0 ? parts : i) - 1;
    if (sizes[order[i]] > 0) --sizes[order[i]], --assigned;
  }
  return sizes;
}

std::vector<int64_t> permutation(int64_t n, Generator& generator) {
  return randperm(n, &generator).to_vector<int64_t>();
}

// extra[c][k] in {0, 1}: whether class c puts one more than floor(n_c r_k) into part k. Row c
// needs need[c] extras; part k has room for room[k]. When the rooms cannot be met exactly, the
// leftovers go to parts by largest fraction, room or not.
void hand_out_extras(const std::vector<std::vector<double>>& frac, std::vector<int64_t> need,
                     std::vector<int64_t> room, std::vector<std::vector<int>>& extra) {
  const size_t classes = frac.size(), parts = room.size();
  extra.assign(classes, std::vector<int>(parts, 0));
  for (int64_t& r : room) r = std::max<int64_t>(r, 0);  // negative only from floating-point noise in the floors

  // Greedy: cells by largest fractional part (ties by class, then part, for determinism).
  std::vector<std::pair<size_t, size_t>> cells;
  for (size_t c = 0; c < classes; ++c)
    for (size_t k = 0; k < parts; ++k) cells.emplace_back(c, k);
  std::stable_sort(cells.begin(), cells.end(),
                   [&](const auto& a, const auto& b) { return frac[a.first][a.second] > frac[b.first][b.second]; });
  for (const auto& [c, k] : cells)
    if (need[c] > 0 && room[k] > 0) extra[c][k] = 1, --need[c], --room[k];

  // Augmenting paths: class -> part it does not use yet -> (part full) a class using that part,
  // which moves its extra elsewhere -> ... -> a part with room.
  for (size_t start = 0; start < classes; ++start) {
    while (need[start] > 0) {
      std::vector<int64_t> parent_of_part(parts, -1);   // the class that reached part k
      std::vector<int64_t> parent_of_class(classes, -1);  // the part that reached class c
      std::vector<bool> seen_class(classes, false);
      std::deque<size_t> queue{start};
      seen_class[start] = true;
      int64_t found = -1;
      while (!queue.empty() && found < 0) {
        const size_t c = queue.front();
        queue.pop_front();
        for (size_t k = 0; k < parts && found < 0; ++k) {
          if (extra[c][k] || parent_of_part[k] >= 0) continue;
          parent_of_part[k] = static_cast<int64_t>(c);
          if (room[k] > 0) {
            found = static_cast<int64_t>(k);
            break;
          }
          for (size_t c2 = 0; c2 < classes; ++c2)
            if (extra[c2][k] && !seen_class[c2]) {
              seen_class[c2] = true;
              parent_of_class[c2] = static_cast<int64_t>(k);
              queue.push_back(c2);
            }
        }
      }
      if (found < 0) break;
      // Walk back: each class on the path takes its new part and gives up the one it came by.
      --room[static_cast<size_t>(found)];
      for (auto k = static_cast<size_t>(found);;) {
        const auto c = static_cast<size_t>(parent_of_part[k]);
        extra[c][k] = 1;
        if (c == start) break;
        const auto previous = static_cast<size_t>(parent_of_class[c]);
        extra[c][previous] = 0;
        k = previous;
      }
      --need[start];
    }
  }
  // Anything left cannot meet the part sizes exactly: stay stratified, let the sizes drift.
  for (size_t c = 0; c < classes; ++c) {
    if (need[c] == 0) continue;
    std::vector<size_t> order(parts);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return frac[c][a] > frac[c][b]; });
    for (size_t k : order)
      if (need[c] > 0 && !extra[c][k]) extra[c][k] = 1, --need[c];
  }
}

}  // namespace

std::vector<int64_t> split_sizes(int64_t total, const std::vector<double>& ratios) {
  if (total < 0) throw ValueError("split_sizes: total must be non-negative, got " + std::to_string(total));
  return largest_remainder(total, checked_ratios("split_sizes", ratios));
}

std::vector<std::vector<int64_t>> split_indices(int64_t n, const std::vector<double>& ratios, uint64_t seed) {
  if (n < 0) throw ValueError("split_indices: n must be non-negative, got " + std::to_string(n));
  const std::vector<int64_t> sizes = largest_remainder(n, checked_ratios("split_indices", ratios));
  Generator generator(seed);
  const std::vector<int64_t> order = permutation(n, generator);
  std::vector<std::vector<int64_t>> parts(sizes.size());
  auto next = order.begin();
  for (size_t k = 0; k < sizes.size(); ++k) {
    parts[k].assign(next, next + sizes[k]);
    next += sizes[k];
  }
  return parts;
}

std::vector<std::vector<int64_t>> stratified_split_indices(const std::vector<int64_t>& labels,
                                                           const std::vector<double>& ratios, uint64_t seed) {
  const std::vector<double> r = checked_ratios("stratified_split_indices", ratios);
  const auto n = static_cast<int64_t>(labels.size());
  const size_t parts = r.size();

  std::map<int64_t, std::vector<int64_t>> members;  // ascending label order: deterministic
  for (int64_t i = 0; i < n; ++i) members[labels[static_cast<size_t>(i)]].push_back(i);
  const size_t classes = members.size();

  // Floors, fractional parts, and what each class and part still needs.
  std::vector<std::vector<int64_t>> counts(classes, std::vector<int64_t>(parts));
  std::vector<std::vector<double>> frac(classes, std::vector<double>(parts));
  std::vector<int64_t> need(classes), room = largest_remainder(n, r);
  size_t c = 0;
  for (const auto& [label, indices] : members) {
    const auto n_c = static_cast<int64_t>(indices.size());
    int64_t floors = 0;
    for (size_t k = 0; k < parts; ++k) {
      const double ideal = static_cast<double>(n_c) * r[k];
      counts[c][k] = std::min<int64_t>(static_cast<int64_t>(std::floor(ideal)), n_c);
      frac[c][k] = ideal - std::floor(ideal);
      floors += counts[c][k];
      room[k] -= counts[c][k];
    }
    need[c] = std::max<int64_t>(n_c - floors, 0);
    if (floors > n_c) {  // only from floating-point noise: give the surplus back
      for (size_t k = 0; k < parts && floors > n_c; ++k)
        if (counts[c][k] > 0) --counts[c][k], ++room[k], --floors;
    }
    ++c;
  }
  std::vector<std::vector<int>> extra;
  hand_out_extras(frac, need, room, extra);

  Generator generator(seed);
  std::vector<std::vector<int64_t>> out(parts);
  c = 0;
  for (const auto& [label, indices] : members) {
    const std::vector<int64_t> order = permutation(static_cast<int64_t>(indices.size()), generator);
    size_t next = 0;
    for (size_t k = 0; k < parts; ++k)
      for (int64_t j = 0; j < counts[c][k] + extra[c][k]; ++j) out[k].push_back(indices[static_cast<size_t>(order[next++])]);
    ++c;
  }
  for (auto& part : out) {  // classes were dealt in label order: mix them
    const std::vector<int64_t> order = permutation(static_cast<int64_t>(part.size()), generator);
    std::vector<int64_t> shuffled(part.size());
    for (size_t i = 0; i < part.size(); ++i) shuffled[i] = part[static_cast<size_t>(order[i])];
    part = std::move(shuffled);
  }
  return out;
}

}  // namespace graft::data
