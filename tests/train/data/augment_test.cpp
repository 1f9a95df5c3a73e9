// EDA augmentation: each operation does what it says and nothing else, seeded determinism, options.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "tensor/error.h"
#include "train/data/augment.h"
#include "train/data/error_matchers.h"

using namespace graft;
using namespace graft::data;
using graft::test::mentions;
using graft::test::message_of;

namespace {

const Tokens kSentence = split_whitespace("the quick brown fox jumps over the lazy dog near a quiet river bank today");

std::map<std::string, int> counts(const Tokens& tokens) {
  std::map<std::string, int> out;
  for (const auto& token : tokens) ++out[token];
  return out;
}

// True when `small` is `big` with some tokens removed (order kept).
bool is_subsequence(const Tokens& small, const Tokens& big) {
  size_t j = 0;
  for (const auto& token : big) {
    if (j < small.size() && small[j] == token) ++j;
  }
  return j == small.size();
}

// The tokens `big` has beyond `small`, as a multiset difference (empty when small has extra ones).
Tokens added_tokens(const Tokens& small, const Tokens& big) {
  auto have = counts(small);
  Tokens out;
  for (const auto& token : big) {
    if (have[token] > 0) {
      --have[token];
    } else {
      out.push_back(token);
    }
  }
  return out;
}

}  // namespace

TEST(Augment, RandomSwapKeepsTheMultisetAndMovesAtMostTwoTokensPerSwap) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const Tokens one = random_swap(kSentence, 1, seed);
    EXPECT_EQ(counts(one), counts(kSentence));
    int moved = 0;
    for (size_t i = 0; i < one.size(); ++i) moved += one[i] != kSentence[i];
    // Two distinct positions swap; only two "the"s swapping could leave the sentence unchanged.
    EXPECT_TRUE(moved == 2 || moved == 0) << seed;
    const Tokens three = random_swap(kSentence, 3, seed);
    EXPECT_EQ(counts(three), counts(kSentence));
  }
  EXPECT_EQ(random_swap(kSentence, 0, 1), kSentence);
  EXPECT_EQ(random_swap({"alone"}, 5, 1), Tokens{"alone"});
  EXPECT_EQ(random_swap({}, 5, 1), Tokens{});
  EXPECT_EQ(random_swap({"a", "b"}, 1, 7), (Tokens{"b", "a"}));
}

TEST(Augment, RandomDeletionOnlyRemovesAndNeverEverything) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const Tokens out = random_deletion(kSentence, 0.3, seed);
    EXPECT_TRUE(is_subsequence(out, kSentence)) << seed;
    EXPECT_FALSE(out.empty());
    const Tokens all = random_deletion(kSentence, 1.0, seed);
    ASSERT_EQ(all.size(), 1u);  // everything drawn: one random token survives
    EXPECT_NE(std::find(kSentence.begin(), kSentence.end(), all[0]), kSentence.end());
  }
  EXPECT_LT(random_deletion(kSentence, 0.5, 3).size(), kSentence.size());
  EXPECT_EQ(random_deletion(kSentence, 0.0, 3), kSentence);
  EXPECT_EQ(random_deletion({"alone"}, 1.0, 3), Tokens{"alone"});
  EXPECT_EQ(random_deletion({}, 0.5, 3), Tokens{});
}

TEST(Augment, RandomInsertionOnlyAddsTokensOfTheSentenceOrVocabulary) {
  const Tokens vocabulary{"zebra", "quasar"};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const Tokens own = random_insertion(kSentence, 3, seed);
    ASSERT_EQ(own.size(), kSentence.size() + 3);
    EXPECT_TRUE(is_subsequence(kSentence, own));
    for (const auto& token : added_tokens(kSentence, own))
      EXPECT_NE(std::find(kSentence.begin(), kSentence.end(), token), kSentence.end()) << token;

    const Tokens from_vocabulary = random_insertion(kSentence, 2, seed, vocabulary);
    ASSERT_EQ(from_vocabulary.size(), kSentence.size() + 2);
    EXPECT_TRUE(is_subsequence(kSentence, from_vocabulary));
    for (const auto& token : added_tokens(kSentence, from_vocabulary))
      EXPECT_TRUE(token == "zebra" || token == "quasar") << token;
  }
  EXPECT_EQ(random_insertion(kSentence, 0, 1), kSentence);
  EXPECT_EQ(random_insertion({"solo"}, 2, 1), (Tokens{"solo", "solo", "solo"}));
  EXPECT_EQ(random_insertion({}, 2, 1), Tokens{});  // nothing to copy
  EXPECT_EQ(random_insertion({}, 2, 1, {"only"}), (Tokens{"only", "only"}));
}

TEST(Augment, SameSeedSameOutputDifferentSeedsDiffer) {
  AugmentOptions options;
  options.copies = 6;
  EXPECT_EQ(augment(kSentence, options, 42, 3), augment(kSentence, options, 42, 3));
  EXPECT_NE(augment(kSentence, options, 42, 3), augment(kSentence, options, 43, 3));
  EXPECT_NE(augment(kSentence, options, 42, 3), augment(kSentence, options, 42, 4));  // keyed on the example too
  EXPECT_NE(random_swap(kSentence, 2, 1), random_swap(kSentence, 2, 2));
}

TEST(Augment, SeededOutputIsPinnedAcrossMachines) {
  // Philox draws, no std:: distributions: these strings are the same on every platform.
  AugmentOptions options;
  options.copies = 3;
  options.swap_alpha = options.insert_alpha = options.delete_p = 0.2;
  const auto out = augment(std::string("a b c d e f g h"), options, 7, 0);
  // Insertion (1 = floor(0.2 * 8) copies of a sentence token), then swap (1), then deletion.
  const std::vector<std::string> expected{"h a b c d e f g h", "a b c e d f g h", "b c d e f g h"};
  EXPECT_EQ(out, expected);
}

TEST(Augment, EachCopyComesFromOneOperationAndTheyTakeTurns) {
  AugmentOptions options;
  options.copies = 6;
  options.swap_alpha = 0.2;
  options.delete_p = 0.3;
  options.insert_alpha = 0.2;
  const auto copies = augment(kSentence, options, 5, 0);
  ASSERT_EQ(copies.size(), 6u);
  int swapped = 0, deleted = 0, inserted = 0;
  for (const Tokens& copy : copies) {
    if (copy.size() < kSentence.size()) {
      EXPECT_TRUE(is_subsequence(copy, kSentence));
      ++deleted;
    } else if (copy.size() > kSentence.size()) {
      EXPECT_TRUE(is_subsequence(kSentence, copy));
      EXPECT_EQ(copy.size(), kSentence.size() + 3);  // max(1, floor(0.2 * 15))
      ++inserted;
    } else {
      EXPECT_EQ(counts(copy), counts(kSentence));
      ++swapped;
    }
  }
  EXPECT_EQ(swapped, 2);
  EXPECT_EQ(deleted, 2);
  EXPECT_EQ(inserted, 2);

  AugmentOptions swaps_only;
  swaps_only.delete_p = swaps_only.insert_alpha = 0.0;
  for (const Tokens& copy : augment(kSentence, swaps_only, 5, 0)) EXPECT_EQ(counts(copy), counts(kSentence));
}

TEST(Augment, DisabledOperationsEmptyAndOneTokenInputs) {
  AugmentOptions none;
  none.swap_alpha = none.insert_alpha = none.delete_p = 0.0;
  none.copies = 2;
  EXPECT_EQ(augment(kSentence, none, 1), (std::vector<Tokens>{kSentence, kSentence}));
  AugmentOptions options;
  options.copies = 3;
  options.vocabulary = {"extra"};
  EXPECT_EQ(augment(Tokens{}, options, 1), std::vector<Tokens>(3));  // empty stays empty
  for (const Tokens& copy : augment(Tokens{"one"}, options, 1)) {
    EXPECT_TRUE(copy == Tokens{"one"} || copy == (Tokens{"one", "extra"}) || copy == (Tokens{"extra", "one"}));
  }
  options.copies = 0;
  EXPECT_TRUE(augment(kSentence, options, 1).empty());
}

TEST(Augment, StringsAreSplitOnWhitespaceAndJoinedWithSpaces) {
  EXPECT_EQ(split_whitespace("  a\tb  c\n"), (Tokens{"a", "b", "c"}));
  EXPECT_EQ(split_whitespace(" \t "), Tokens{});
  AugmentOptions none;
  none.swap_alpha = none.insert_alpha = none.delete_p = 0.0;
  none.copies = 1;
  EXPECT_EQ(augment(std::string("  a\tb  c\n"), none, 1), std::vector<std::string>{"a b c"});
  AugmentOptions options;
  const auto from_text = augment(std::string("the quick brown fox"), options, 9, 2);
  const auto from_tokens = augment(Tokens{"the", "quick", "brown", "fox"}, options, 9, 2);
  ASSERT_EQ(from_text.size(), from_tokens.size());
  for (size_t i = 0; i < from_text.size(); ++i) EXPECT_EQ(split_whitespace(from_text[i]), from_tokens[i]);
}

TEST(Augment, ExamplesKeepLabelsAndDoNotDependOnOrder) {
  const TextExamples examples{{"good movie indeed", "", "fresh"}, {"dull and far too long", "pair", "rotten"}};
  AugmentOptions options;
  options.copies = 2;
  const TextExamples out = augment_examples(examples, options, 17);
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0].text, "good movie indeed");
  EXPECT_EQ(out[3].text, "dull and far too long");
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(out[i].label, "fresh");
  for (size_t i = 3; i < 6; ++i) {
    EXPECT_EQ(out[i].label, "rotten");
    EXPECT_EQ(out[i].text_pair, "pair");
  }
  // Example 1's copies are keyed on (seed, 1), whatever came before it.
  const auto alone = augment(examples[1].text, options, 17, 1);
  EXPECT_EQ(out[4].text, alone[0]);
  EXPECT_EQ(out[5].text, alone[1]);
}

TEST(Augment, BadOptionsAreValueErrorsNamingTheOption) {
  AugmentOptions options;
  options.delete_p = 1.5;
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { augment(kSentence, options, 1); }), {"delete_p", "[0, 1]", "1.5"}));
  options = {};
  options.swap_alpha = -0.1;
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { augment(kSentence, options, 1); }), {"swap_alpha", "-0.1"}));
  options = {};
  options.insert_alpha = NAN;
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { augment(kSentence, options, 1); }), {"insert_alpha"}));
  options = {};
  options.copies = -1;
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { augment_examples({}, options, 1); }), {"copies", "-1"}));
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { random_deletion(kSentence, 2.0, 1); }), {"random_deletion", "p"}));
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { random_swap(kSentence, -1, 1); }), {"swaps", "-1"}));
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { random_insertion(kSentence, -2, 1); }), {"insertions", "-2"}));
}
