// Column mapping, the label vocabulary and regression targets, with the errors users hit most:
// a wrongly named column, an unseen label, a non-numeric target.
#include <gtest/gtest.h>

#include "error_matchers.h"

#include <filesystem>

#include "tensor/error.h"
#include "train/data/reader.h"

using namespace graft;
using graft::test::mentions;
using graft::test::message_of;
using namespace graft::data;

namespace {

Table csv(const std::string& text) {
  ReadOptions options;
  options.format = TableFormat::csv;
  return parse_table(text, options, "data.csv");
}

}  // namespace

TEST(Examples, MapsTextPairAndLabel) {
  const Table t = read_table(std::filesystem::path(GRAFT_TEST_DATA_DIR) / "train/data/fixtures/pairs.tsv");
  const TextExamples e = to_examples(t, {.text = "sentence1", .text_pair = "sentence2", .label = "label"});
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].text, "A man sleeps.");
  EXPECT_EQ(e[0].text_pair, "A person rests.");
  EXPECT_EQ(e[1].label, "contradiction");
}

TEST(Examples, DefaultsAndUnlabelled) {
  const Table t = csv("id,text,label\n7,hello, 1 \n8,bye,0\n");
  const TextExamples e = to_examples(t);
  EXPECT_EQ(e[0].text, "hello");
  EXPECT_EQ(e[0].label, "1");  // surrounding spaces trimmed from labels
  EXPECT_TRUE(e[0].text_pair.empty());
  const TextExamples unlabelled = to_examples(csv("text\na\nb\n"), {.label = ""});
  ASSERT_EQ(unlabelled.size(), 2u);
  EXPECT_TRUE(unlabelled[1].label.empty());
}

TEST(Examples, MissingColumnListsTheColumnsPresent) {
  const Table t = csv("review,sentiment\ngood,pos\n");
  EXPECT_TRUE(mentions(message_of<FormatError>([&] { to_examples(t); }),
                       {"data.csv", "no column \"text\"", "mapped as text", "\"review\", \"sentiment\""}));
  EXPECT_TRUE(mentions(message_of<FormatError>([&] { to_examples(t, {.text = "review"}); }),
                       {"no column \"label\"", "mapped as label"}));
  EXPECT_TRUE(mentions(message_of<FormatError>([&] { to_examples(t, {.text = "review", .text_pair = "b"}); }),
                       {"no column \"b\"", "text_pair"}));
  EXPECT_NO_THROW(to_examples(t, {.text = "review", .label = "sentiment"}));
}

TEST(Examples, EmptyLabelNamesTheLine) {
  const Table t = csv("text,label\na,x\nb,\n");
  EXPECT_TRUE(mentions(message_of<FormatError>([&] { to_examples(t); }), {"data.csv line 3", "\"label\"", "empty label"}));
}

TEST(LabelVocab, SortedUniqueByDefault) {
  const LabelVocab v = LabelVocab::from_labels({"rotten", "fresh", "rotten", "fresh"});
  EXPECT_EQ(v.size(), 2);
  EXPECT_EQ(v.id("fresh"), 0);
  EXPECT_EQ(v.id("rotten"), 1);
  EXPECT_EQ(v.label(1), "rotten");
  EXPECT_TRUE(v.contains("fresh"));
  EXPECT_FALSE(v.contains("stale"));
}

TEST(LabelVocab, IntegerLabelsSortNumerically) {
  const LabelVocab v = LabelVocab::from_labels({"10", "2", "-1", "0", "2"});
  EXPECT_EQ(v.labels(), (std::vector<std::string>{"-1", "0", "2", "10"}));
  const LabelVocab mixed = LabelVocab::from_labels({"10", "2", "b"});  // not all integers: lexicographic
  EXPECT_EQ(mixed.labels(), (std::vector<std::string>{"10", "2", "b"}));
}

TEST(LabelVocab, ExplicitOrder) {
  const LabelVocab v({"negative", "neutral", "positive"});
  EXPECT_EQ(v.id("positive"), 2);
  EXPECT_EQ(v.id("negative"), 0);
  EXPECT_TRUE(mentions(message_of<ValueError>([] { LabelVocab({"a", "b", "a"}); }), {"\"a\"", "twice"}));
  EXPECT_THROW(LabelVocab({"a", ""}), ValueError);
}

TEST(LabelVocab, UnknownLabelListsKnownOnes) {
  const LabelVocab v({"negative", "positive"});
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { v.id("neutral"); }),
                       {"unknown label \"neutral\"", "known labels (2)", "\"negative\", \"positive\""}));
  EXPECT_TRUE(mentions(message_of<IndexError>([&] { v.label(2); }), {"id 2", "2 labels"}));
  EXPECT_THROW(v.label(-1), IndexError);
}

TEST(LabelVocab, LabelIdsFromExamples) {
  const TextExamples e = to_examples(csv("text,label\na,pos\nb,neg\nc,pos\n"));
  const LabelVocab v = LabelVocab::from_examples(e);
  EXPECT_EQ(label_ids(e, v), (std::vector<int64_t>{1, 0, 1}));
  const TextExamples test = to_examples(csv("text,label\na,pos\nb,meh\n"));
  EXPECT_TRUE(mentions(message_of<ValueError>([&] { label_ids(test, v); }), {"example 1", "unknown label \"meh\""}));
}

TEST(RegressionTargets, ParsesNumbers) {
  const Table t = csv("text,score\na,1.5\nb, -2 \nc,3e2\nd,+0.25\n");
  EXPECT_EQ(regression_targets(t, "score"), (std::vector<double>{1.5, -2.0, 300.0, 0.25}));
}

TEST(RegressionTargets, NonNumberNamesLineAndColumn) {
  EXPECT_TRUE(mentions(message_of<FormatError>([] { regression_targets(csv("text,score\na,1\nb,high\n"), "score"); }),
                       {"data.csv line 3", "column \"score\"", "expected a finite number", "\"high\""}));
  EXPECT_THROW(regression_targets(csv("text,score\na,\n"), "score"), FormatError);
  EXPECT_THROW(regression_targets(csv("text,score\na,nan\n"), "score"), FormatError);
  EXPECT_THROW(regression_targets(csv("text,score\na,1.5x\n"), "score"), FormatError);
  EXPECT_TRUE(mentions(message_of<FormatError>([] { regression_targets(csv("text,score\na,1\n"), "label"); }),
                       {"no column \"label\"", "\"text\", \"score\""}));
}
