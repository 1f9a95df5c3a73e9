// Turning examples into batch tensors: dynamic padding of token-id sequences (to the longest in
// the batch, as Hugging Face's DataCollatorWithPadding), a Dataset of sequences with labels, and
// TensorDataset (declared in dataset.h) whose collate picks rows with index_select.
//
// Shapes: B batch size, L padded length (longest sequence, truncated to max_length, rounded up to
// pad_to_multiple_of). All tensors are on the CPU; the trainer moves them.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"
#include "train/data/dataset.h"

namespace graft::data {

enum class PadSide { right, left };

struct PaddedBatch {
  Tensor ids;             // i64 [B, L], pad_id where there is no token
  Tensor attention_mask;  // i64 [B, L], 1 for tokens, 0 for padding (as HF)
  Tensor lengths;         // i64 [B], tokens per row after truncation
};

// max_length > 0 truncates longer sequences, keeping their first max_length tokens (-1: no
// truncation); side says where padding goes (left for decoder-style generation).
PaddedBatch pad_sequences(const std::vector<std::vector<int64_t>>& sequences, int64_t pad_id,
                          int64_t max_length = -1, PadSide side = PadSide::right, int64_t pad_to_multiple_of = 1);

struct PadOptions {
  int64_t pad_id = 0;
  int64_t max_length = -1;
  PadSide side = PadSide::right;
  int64_t pad_to_multiple_of = 1;
};

// Token-id sequences with i64 class labels or f32 regression targets. collate gives
// {"input_ids" [B, L], "attention_mask" [B, L], "lengths" [B], "labels" [B]}; "labels" is absent
// when the dataset has none (empty labels: prediction data). length(i) is the length after
// truncation, for BatchSamplerOptions::lengths.
class SequenceDataset : public Dataset {
 public:
  SequenceDataset(std::vector<std::vector<int64_t>> sequences, std::vector<int64_t> labels, PadOptions pad = {});
  SequenceDataset(std::vector<std::vector<int64_t>> sequences, std::vector<float> targets, PadOptions pad = {});

  int64_t size() const override { return static_cast<int64_t>(sequences_.size()); }
  Batch collate(const std::vector<int64_t>& indices) const override;
  int64_t length(int64_t index) const override;

  bool has_labels() const { return !labels_.empty() || !targets_.empty(); }
  const std::vector<std::vector<int64_t>>& sequences() const { return sequences_; }
  const PadOptions& pad_options() const { return pad_; }

 private:
  void check_index(int64_t index) const;
  std::vector<std::vector<int64_t>> sequences_;
  std::vector<int64_t> labels_;
  std::vector<float> targets_;
  PadOptions pad_;
};

}  // namespace graft::data
