// Padding and collating: pad_sequences, SequenceDataset and TensorDataset (from dataset.h).
#include "train/data/collate.h"

#include <algorithm>
#include <string>

#include "tensor/error.h"
#include "tensor/factory.h"
#include "tensor/ops.h"

namespace graft::data {

namespace {

void check_indices(const char* op, const std::vector<int64_t>& indices, int64_t size) {
  for (size_t i = 0; i < indices.size(); ++i)
    if (indices[i] < 0 || indices[i] >= size)
      throw IndexError(std::string(op) + ": index " + std::to_string(indices[i]) + " (at position " +
                       std::to_string(i) + ") is out of range for " + std::to_string(size) + " examples");
}

int64_t truncated_length(size_t length, int64_t max_length) {
  const auto n = static_cast<int64_t>(length);
  return max_length > 0 ? std::min(n, max_length) : n;
}

}  // namespace

PaddedBatch pad_sequences(const std::vector<std::vector<int64_t>>& sequences, int64_t pad_id, int64_t max_length,
                          PadSide side, int64_t pad_to_multiple_of) {
  if (max_length == 0 || max_length < -1)
    throw ValueError("pad_sequences: max_length must be positive (truncate) or -1 (no truncation), got " +
                     std::to_string(max_length));
  if (pad_to_multiple_of < 1)
    throw ValueError("pad_sequences: pad_to_multiple_of must be at least 1, got " + std::to_string(pad_to_multiple_of));
  const auto batch = static_cast<int64_t>(sequences.size());
  std::vector<int64_t> lengths(sequences.size());
  int64_t longest = 0;
  for (size_t b = 0; b < sequences.size(); ++b) {
    lengths[b] = truncated_length(sequences[b].size(), max_length);
    longest = std::max(longest, lengths[b]);
  }
  // Rounded up even past max_length, as HF does: tensor-core friendly shapes matter more.
  const int64_t padded = (longest + pad_to_multiple_of - 1) / pad_to_multiple_of * pad_to_multiple_of;

  std::vector<int64_t> ids(static_cast<size_t>(batch * padded), pad_id), mask(ids.size(), 0);
  for (size_t b = 0; b < sequences.size(); ++b) {
    const int64_t n = lengths[b];
    const int64_t first = side == PadSide::right ? 0 : padded - n;  // column of the first token
    const size_t row = b * static_cast<size_t>(padded) + static_cast<size_t>(first);
    std::copy_n(sequences[b].begin(), n, ids.begin() + static_cast<std::ptrdiff_t>(row));
    std::fill_n(mask.begin() + static_cast<std::ptrdiff_t>(row), n, int64_t{1});
  }
  PaddedBatch out;
  out.ids = from_vector(ids, {batch, padded});
  out.attention_mask = from_vector(mask, {batch, padded});
  out.lengths = from_vector(lengths, {batch});
  return out;
}

// ---- SequenceDataset ----

SequenceDataset::SequenceDataset(std::vector<std::vector<int64_t>> sequences, std::vector<int64_t> labels,
                                 PadOptions pad)
    : sequences_(std::move(sequences)), labels_(std::move(labels)), pad_(pad) {
  if (!labels_.empty() && labels_.size() != sequences_.size())
    throw ShapeError("SequenceDataset: " + std::to_string(sequences_.size()) + " sequences but " +
                     std::to_string(labels_.size()) + " labels; expected one label each (or none)");
  pad_sequences({}, pad_.pad_id, pad_.max_length, pad_.side, pad_.pad_to_multiple_of);  // validates the options
}

SequenceDataset::SequenceDataset(std::vector<std::vector<int64_t>> sequences, std::vector<float> targets,
                                 PadOptions pad)
    : sequences_(std::move(sequences)), targets_(std::move(targets)), pad_(pad) {
  if (!targets_.empty() && targets_.size() != sequences_.size())
    throw ShapeError("SequenceDataset: " + std::to_string(sequences_.size()) + " sequences but " +
                     std::to_string(targets_.size()) + " targets; expected one target each (or none)");
  pad_sequences({}, pad_.pad_id, pad_.max_length, pad_.side, pad_.pad_to_multiple_of);
}

void SequenceDataset::check_index(int64_t index) const {
  if (index < 0 || index >= size())
    throw IndexError("SequenceDataset: index " + std::to_string(index) + " is out of range for " +
                     std::to_string(size()) + " examples");
}

int64_t SequenceDataset::length(int64_t index) const {
  check_index(index);
  return truncated_length(sequences_[static_cast<size_t>(index)].size(), pad_.max_length);
}

Batch SequenceDataset::collate(const std::vector<int64_t>& indices) const {
  check_indices("SequenceDataset::collate", indices, size());
  std::vector<std::vector<int64_t>> picked;
  picked.reserve(indices.size());
  for (int64_t i : indices) picked.push_back(sequences_[static_cast<size_t>(i)]);
  PaddedBatch padded = pad_sequences(picked, pad_.pad_id, pad_.max_length, pad_.side, pad_.pad_to_multiple_of);
  Batch batch{{"input_ids", padded.ids}, {"attention_mask", padded.attention_mask}, {"lengths", padded.lengths}};
  const Shape shape{static_cast<int64_t>(indices.size())};
  if (!labels_.empty()) {
    std::vector<int64_t> labels;
    for (int64_t i : indices) labels.push_back(labels_[static_cast<size_t>(i)]);
    batch["labels"] = from_vector(labels, shape);
  } else if (!targets_.empty()) {
    std::vector<float> targets;
    for (int64_t i : indices) targets.push_back(targets_[static_cast<size_t>(i)]);
    batch["labels"] = from_vector(targets, shape);
  }
  return batch;
}

// ---- TensorDataset ----

TensorDataset::TensorDataset(std::map<std::string, Tensor> columns) : columns_(std::move(columns)) {
  if (columns_.empty()) throw ValueError("TensorDataset: expected at least one column");
  std::string sizes;
  bool agree = true;
  for (const auto& [name, tensor] : columns_) {
    if (!tensor.defined()) throw ValueError("TensorDataset: column \"" + name + "\" is an undefined tensor");
    if (tensor.dim() == 0)
      throw ShapeError("TensorDataset: column \"" + name + "\" is 0-d; expected a first dimension indexing examples");
    if (sizes.empty()) size_ = tensor.size(0);
    else agree = agree && tensor.size(0) == size_;
    sizes += (sizes.empty() ? "" : ", ") + name + " " + shape_str(tensor.shape());
  }
  if (!agree)
    throw ShapeError("TensorDataset: columns disagree on the number of examples (dim 0): " + sizes +
                     "; expected the same first dimension");
}

Batch TensorDataset::collate(const std::vector<int64_t>& indices) const {
  check_indices("TensorDataset::collate", indices, size_);
  const Tensor index = from_vector(indices, {static_cast<int64_t>(indices.size())});
  Batch batch;
  for (const auto& [name, tensor] : columns_)  // columns may live on a GPU (features computed there)
    batch[name] = ops::index_select(tensor, 0, ops::to_device(index, tensor.device()), "TensorDataset::collate");
  return batch;
}

}  // namespace graft::data
