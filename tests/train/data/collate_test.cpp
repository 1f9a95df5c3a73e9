// Dynamic padding (both sides, truncation, pad_to_multiple_of) and the two datasets' collate.
#include <gtest/gtest.h>

#include "error_matchers.h"

#include "tensor/error.h"
#include "tensor/factory.h"
#include "train/data/collate.h"

using namespace graft;
using graft::test::mentions;
using graft::test::message_of;
using namespace graft::data;

namespace {

using I64 = std::vector<int64_t>;

}  // namespace

TEST(PadSequences, RightPaddingToLongest) {
  const PaddedBatch b = pad_sequences({{5, 6, 7}, {8}, {}}, 0);
  EXPECT_EQ(b.ids.shape(), (Shape{3, 3}));
  EXPECT_EQ(b.ids.dtype(), DType::i64);
  EXPECT_EQ(b.attention_mask.dtype(), DType::i64);
  EXPECT_EQ(b.ids.to_vector<int64_t>(), (I64{5, 6, 7, 8, 0, 0, 0, 0, 0}));
  EXPECT_EQ(b.attention_mask.to_vector<int64_t>(), (I64{1, 1, 1, 1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(b.lengths.shape(), (Shape{3}));
  EXPECT_EQ(b.lengths.to_vector<int64_t>(), (I64{3, 1, 0}));
}

TEST(PadSequences, LeftPadding) {
  const PaddedBatch b = pad_sequences({{5, 6, 7}, {8, 9}}, -1, -1, PadSide::left);
  EXPECT_EQ(b.ids.to_vector<int64_t>(), (I64{5, 6, 7, -1, 8, 9}));
  EXPECT_EQ(b.attention_mask.to_vector<int64_t>(), (I64{1, 1, 1, 0, 1, 1}));
}

TEST(PadSequences, TruncationKeepsTheFirstTokens) {
  const PaddedBatch right = pad_sequences({{1, 2, 3, 4, 5}, {6, 7}}, 0, 3);
  EXPECT_EQ(right.ids.shape(), (Shape{2, 3}));
  EXPECT_EQ(right.ids.to_vector<int64_t>(), (I64{1, 2, 3, 6, 7, 0}));
  EXPECT_EQ(right.lengths.to_vector<int64_t>(), (I64{3, 2}));
  const PaddedBatch left = pad_sequences({{1, 2, 3, 4, 5}, {6, 7}}, 0, 3, PadSide::left);
  EXPECT_EQ(left.ids.to_vector<int64_t>(), (I64{1, 2, 3, 0, 6, 7}));
  // Truncation only shortens: a batch of short sequences stays short (dynamic padding).
  EXPECT_EQ(pad_sequences({{1}, {2, 3}}, 0, 128).ids.shape(), (Shape{2, 2}));
}

TEST(PadSequences, PadToMultipleOf) {
  const PaddedBatch b = pad_sequences({{1, 2, 3, 4, 5}, {6}}, 0, -1, PadSide::right, 8);
  EXPECT_EQ(b.ids.shape(), (Shape{2, 8}));
  EXPECT_EQ(b.attention_mask.to_vector<int64_t>(), (I64{1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(pad_sequences({{1, 2, 3, 4}}, 0, -1, PadSide::right, 4).ids.shape(), (Shape{1, 4}));  // already a multiple
  EXPECT_EQ(pad_sequences({{1, 2, 3, 4, 5, 6}}, 0, 5, PadSide::left, 4).ids.to_vector<int64_t>(),
            (I64{0, 0, 0, 1, 2, 3, 4, 5}));  // truncate to 5, then round up to 8
}

TEST(PadSequences, SingleSequenceAndEmptyBatch) {
  const PaddedBatch one = pad_sequences({{4}}, 0);
  EXPECT_EQ(one.ids.shape(), (Shape{1, 1}));
  EXPECT_EQ(one.lengths.shape(), (Shape{1}));
  const PaddedBatch none = pad_sequences({}, 0);
  EXPECT_EQ(none.ids.shape(), (Shape{0, 0}));
}

TEST(PadSequences, BadArguments) {
  EXPECT_THROW(pad_sequences({{1}}, 0, 0), ValueError);
  EXPECT_THROW(pad_sequences({{1}}, 0, -2), ValueError);
  EXPECT_THROW(pad_sequences({{1}}, 0, -1, PadSide::right, 0), ValueError);
}

TEST(SequenceDataset, CollateWithLabels) {
  const SequenceDataset ds({{11, 12}, {13, 14, 15, 16}, {17}}, I64{2, 0, 1}, {.pad_id = 1, .max_length = 3});
  EXPECT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.length(1), 3);  // after truncation
  EXPECT_EQ(ds.length(2), 1);
  const Batch b = ds.collate({2, 1});
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b.at("input_ids").to_vector<int64_t>(), (I64{17, 1, 1, 13, 14, 15}));
  EXPECT_EQ(b.at("attention_mask").to_vector<int64_t>(), (I64{1, 0, 0, 1, 1, 1}));
  EXPECT_EQ(b.at("lengths").to_vector<int64_t>(), (I64{1, 3}));
  EXPECT_EQ(b.at("labels").dtype(), DType::i64);
  EXPECT_EQ(b.at("labels").shape(), (Shape{2}));
  EXPECT_EQ(b.at("labels").to_vector<int64_t>(), (I64{1, 0}));
  EXPECT_EQ(ds.collate({0}).at("labels").shape(), (Shape{1}));
}

TEST(SequenceDataset, RegressionTargetsAndUnlabelled) {
  const SequenceDataset reg({{1}, {2, 3}}, std::vector<float>{0.5f, -1.25f});
  const Batch b = reg.collate({1, 0});
  EXPECT_EQ(b.at("labels").dtype(), DType::f32);
  EXPECT_EQ(b.at("labels").to_vector<float>(), (std::vector<float>{-1.25f, 0.5f}));
  const SequenceDataset unlabelled({{1}, {2, 3}}, I64{});
  EXPECT_FALSE(unlabelled.has_labels());
  EXPECT_EQ(unlabelled.collate({0, 1}).count("labels"), 0u);
}

TEST(SequenceDataset, Errors) {
  EXPECT_THROW(SequenceDataset({{1}, {2}}, I64{0}), ShapeError);
  EXPECT_THROW(SequenceDataset({{1}}, I64{0}, {.max_length = 0}), ValueError);
  const SequenceDataset ds({{1}, {2}}, I64{0, 1});
  EXPECT_NE(message_of<IndexError>([&] { ds.collate({0, 2}); }).find("index 2"), std::string::npos);
  EXPECT_THROW(ds.collate({-1}), IndexError);
  EXPECT_THROW(ds.length(5), IndexError);
}

TEST(TensorDataset, CollatePicksRowsInOrder) {
  Tensor features = arange(0.0, 12.0).reshape({4, 3});
  Tensor labels = from_vector<int64_t>({10, 11, 12, 13});
  const TensorDataset ds({{"features", features}, {"labels", labels}});
  EXPECT_EQ(ds.size(), 4);
  const Batch b = ds.collate({3, 0, 3});
  EXPECT_EQ(b.at("features").shape(), (Shape{3, 3}));
  EXPECT_EQ(b.at("features").to_vector<float>(), (std::vector<float>{9, 10, 11, 0, 1, 2, 9, 10, 11}));
  EXPECT_EQ(b.at("labels").to_vector<int64_t>(), (I64{13, 10, 13}));
  EXPECT_EQ(ds.collate({2}).at("labels").shape(), (Shape{1}));
  // A non-contiguous column (a transposed view) collates the same values.
  const TensorDataset t({{"x", arange(0.0, 6.0).reshape({3, 2}).t()}});
  EXPECT_EQ(t.collate({1}).at("x").to_vector<float>(), (std::vector<float>{1, 3, 5}));
  EXPECT_EQ(ds.length(0), 1);
}

TEST(TensorDataset, Errors) {
  const std::string m = message_of<ShapeError>([] {
    TensorDataset({{"features", zeros({10, 3})}, {"labels", zeros({9}, DType::i64)}});
  });
  EXPECT_NE(m.find("features [10, 3]"), std::string::npos) << m;
  EXPECT_NE(m.find("labels [9]"), std::string::npos) << m;
  EXPECT_THROW(TensorDataset({}), ValueError);
  EXPECT_THROW(TensorDataset({{"x", scalar_tensor(1.0)}}), ShapeError);
  EXPECT_THROW(TensorDataset({{"x", Tensor()}}), ValueError);
  const TensorDataset ds({{"x", zeros({4, 2})}});
  const std::string oob = message_of<IndexError>([&] { ds.collate({1, 4}); });
  EXPECT_NE(oob.find("index 4"), std::string::npos) << oob;
  EXPECT_NE(oob.find("4 examples"), std::string::npos) << oob;
  EXPECT_THROW(ds.collate({-1}), IndexError);
}
