#include "train/data/augment.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "tensor/error.h"
#include "tensor/factory.h"

namespace graft::data {

namespace {

// SplitMix64's finaliser: a bijection that spreads nearby keys far apart.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The seed of one copy of one example. The slot after the last copy keys the operations' order.
uint64_t copy_seed(uint64_t seed, uint64_t example_index, uint64_t copy) {
  return mix(mix(mix(seed) ^ example_index) ^ copy);
}

// Uniform numbers from a Philox Generator, drawn a block at a time: the stream depends on the seed
// only, not on how the numbers are split between calls.
class Draws {
 public:
  explicit Draws(uint64_t seed) : generator_(seed) {}
  double uniform() {  // [0, 1)
    if (next_ == block_.size()) {
      block_ = rand({kBlock}, DType::f64, &generator_).to_vector<double>();
      next_ = 0;
    }
    return block_[next_++];
  }
  size_t below(size_t n) {  // [0, n), n > 0
    return std::min(n - 1, static_cast<size_t>(uniform() * static_cast<double>(n)));
  }

 private:
  static constexpr int64_t kBlock = 64;
  Generator generator_;
  std::vector<double> block_;
  size_t next_ = 0;
};

std::string number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

void check_probability(const char* op, const char* name, double value) {
  if (!(value >= 0.0 && value <= 1.0))
    throw ValueError(std::string(op) + ": " + name + " must be in [0, 1], got " + number(value));
}

void check_count(const char* op, const char* name, int64_t value) {
  if (value < 0) throw ValueError(std::string(op) + ": " + name + " must be >= 0, got " + std::to_string(value));
}

void check_options(const AugmentOptions& options) {
  check_probability("augment", "AugmentOptions::swap_alpha", options.swap_alpha);
  check_probability("augment", "AugmentOptions::insert_alpha", options.insert_alpha);
  check_probability("augment", "AugmentOptions::delete_p", options.delete_p);
  check_count("augment", "AugmentOptions::copies", options.copies);
}

enum class Operation { swap, deletion, insertion };

}  // namespace

Tokens random_swap(const Tokens& tokens, int64_t swaps, uint64_t seed) {
  check_count("random_swap", "swaps", swaps);
  Tokens out = tokens;
  if (out.size() < 2) return out;
  Draws draws(seed);
  for (int64_t s = 0; s < swaps; ++s) {
    const size_t i = draws.below(out.size());
    size_t j = draws.below(out.size() - 1);  // one of the other positions
    if (j >= i) ++j;
    std::swap(out[i], out[j]);
  }
  return out;
}

Tokens random_deletion(const Tokens& tokens, double p, uint64_t seed) {
  check_probability("random_deletion", "p", p);
  if (tokens.size() <= 1) return tokens;
  Draws draws(seed);
  Tokens out;
  for (const auto& token : tokens) {
    if (!(draws.uniform() < p)) out.push_back(token);
  }
  if (out.empty()) out.push_back(tokens[draws.below(tokens.size())]);
  return out;
}

Tokens random_insertion(const Tokens& tokens, int64_t insertions, uint64_t seed, const Tokens& vocabulary) {
  check_count("random_insertion", "insertions", insertions);
  Tokens out = tokens;
  const Tokens& pool = vocabulary.empty() ? out : vocabulary;
  if (pool.empty()) return out;
  Draws draws(seed);
  for (int64_t k = 0; k < insertions; ++k) {
    std::string token = pool[draws.below(pool.size())];  // a copy: inserting may move the pool's strings
    const size_t position = draws.below(out.size() + 1);
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(position), std::move(token));
  }
  return out;
}

std::vector<Tokens> augment(const Tokens& tokens, const AugmentOptions& options, uint64_t seed,
                            uint64_t example_index) {
  check_options(options);
  std::vector<Operation> enabled;
  if (options.swap_alpha > 0.0) enabled.push_back(Operation::swap);
  if (options.delete_p > 0.0) enabled.push_back(Operation::deletion);
  if (options.insert_alpha > 0.0) enabled.push_back(Operation::insertion);
  const auto copies = static_cast<uint64_t>(options.copies);
  if (enabled.empty() || tokens.empty()) return std::vector<Tokens>(copies, tokens);

  const double n = static_cast<double>(tokens.size());
  auto count = [n](double alpha) { return std::max<int64_t>(1, static_cast<int64_t>(std::floor(alpha * n))); };
  const size_t first = Draws(copy_seed(seed, example_index, copies)).below(enabled.size());
  std::vector<Tokens> out;
  out.reserve(copies);
  for (uint64_t c = 0; c < copies; ++c) {
    const uint64_t s = copy_seed(seed, example_index, c);
    switch (enabled[(first + c) % enabled.size()]) {
      case Operation::swap: out.push_back(random_swap(tokens, count(options.swap_alpha), s)); break;
      case Operation::deletion: out.push_back(random_deletion(tokens, options.delete_p, s)); break;
      case Operation::insertion:
        out.push_back(random_insertion(tokens, count(options.insert_alpha), s, options.vocabulary));
        break;
    }
  }
  return out;
}

std::vector<std::string> augment(const std::string& text, const AugmentOptions& options, uint64_t seed,
                                 uint64_t example_index) {
  std::vector<std::string> out;
  for (const Tokens& tokens : augment(split_whitespace(text), options, seed, example_index)) {
    std::string joined;
    for (const auto& token : tokens) joined += (joined.empty() ? "" : " ") + token;
    out.push_back(std::move(joined));
  }
  return out;
}

TextExamples augment_examples(const TextExamples& examples, const AugmentOptions& options, uint64_t seed) {
  check_options(options);
  TextExamples out;
  out.reserve(examples.size() * static_cast<size_t>(1 + options.copies));
  for (size_t i = 0; i < examples.size(); ++i) {
    const TextExample& example = examples[i];
    out.push_back(example);
    for (auto& text : augment(example.text, options, seed, i)) out.push_back({std::move(text), example.text_pair, example.label});
  }
  return out;
}

Tokens split_whitespace(const std::string& text) {
  Tokens out;
  size_t i = 0;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (i < text.size()) {
    while (i < text.size() && space(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !space(text[i])) ++i;
    if (i > start) out.emplace_back(text, start, i - start);
  }
  return out;
}

}  // namespace graft::data
