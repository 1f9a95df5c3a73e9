// Text augmentation: EDA (Wei & Zou 2019, "Easy Data Augmentation Techniques for Boosting
// Performance on Text Classification Tasks") without its WordNet synonyms: random swap, random
// deletion and random insertion of tokens.
//
// Every draw comes from a Philox Generator keyed on the seed the caller passes (augment keys each
// copy on (seed, example index, copy)), so the same seed and input give the same output on any
// machine, whatever order the examples are augmented in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/data/reader.h"

namespace graft::data {

using Tokens = std::vector<std::string>;

// Swaps the tokens at two distinct random positions, `swaps` times (fewer than two tokens: returned
// as they are). The multiset of tokens never changes. ValueError for swaps < 0.
Tokens random_swap(const Tokens& tokens, int64_t swaps, uint64_t seed);

// Deletes each token with probability p, but never all of them: when every token is drawn for
// deletion, one random token is kept (a single token is always kept). ValueError for p outside [0, 1].
Tokens random_deletion(const Tokens& tokens, double p, uint64_t seed);

// Inserts `insertions` tokens, each a copy of a random token of `vocabulary`, or of the sentence as
// it stands when the vocabulary is empty, at a random position (the ends included). An empty
// sentence with an empty vocabulary has nothing to copy and is returned as it is.
// ValueError for insertions < 0.
Tokens random_insertion(const Tokens& tokens, int64_t insertions, uint64_t seed, const Tokens& vocabulary = {});

struct AugmentOptions {
  // EDA's alphas: a sentence of n tokens gets max(1, floor(alpha * n)) swaps or insertions.
  double swap_alpha = 0.1;
  double insert_alpha = 0.1;
  double delete_p = 0.1;  // EDA's p_rd: each token's deletion probability
  int64_t copies = 4;     // augmented copies per example (EDA's num_aug)
  Tokens vocabulary;      // insertion draws from here; from the sentence itself when empty
};

// `copies` augmented versions of the sentence (the original not among them). As EDA, each copy
// applies one operation; the enabled ones (alpha or p > 0) take turns from a random first one, so
// they share the copies evenly. With every operation disabled the copies equal the input, and an
// empty sentence stays empty. ValueError naming the option for an alpha or p outside [0, 1] or
// copies < 0.
std::vector<Tokens> augment(const Tokens& tokens, const AugmentOptions& options, uint64_t seed,
                            uint64_t example_index = 0);

// The same on a whitespace-separated sentence; the copies are joined with single spaces.
std::vector<std::string> augment(const std::string& text, const AugmentOptions& options, uint64_t seed,
                                 uint64_t example_index = 0);

// Each example followed by its copies of `text` (text_pair and label kept), example i keyed on
// (seed, i). The result has examples.size() * (1 + copies) entries.
TextExamples augment_examples(const TextExamples& examples, const AugmentOptions& options, uint64_t seed);

// Splits on ASCII whitespace, dropping empty tokens.
Tokens split_whitespace(const std::string& text);

}  // namespace graft::data
