// What the Trainer reads: a Dataset of N examples that turns a list of example indices into a
// Batch, a map from names to tensors ("input_ids", "attention_mask", "labels", "features", ...)
// as a Hugging Face collator does. The trainer only needs "labels" (for metrics) by convention;
// everything else is between the dataset and the user's forward function.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace graft::data {

using Batch = std::map<std::string, Tensor>;

// The batch with every tensor on `device` (a tensor already there is shared, not copied).
inline Batch to_device(const Batch& batch, Device device) {
  Batch out;
  for (const auto& [name, tensor] : batch) out.emplace(name, tensor.defined() ? tensor.to(device) : tensor);
  return out;
}

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Stacks/pads the examples at `indices` (in that order) into one batch.
  virtual Batch collate(const std::vector<int64_t>& indices) const = 0;
  // Length of example i in tokens, for length bucketing; datasets without lengths return 1.
  virtual int64_t length(int64_t index) const { return 1; }
};

// In-memory tensors whose first dimension indexes examples, e.g. {"features": [N, F], "labels": [N]}.
class TensorDataset : public Dataset {
 public:
  explicit TensorDataset(std::map<std::string, Tensor> columns);
  int64_t size() const override { return size_; }
  Batch collate(const std::vector<int64_t>& indices) const override;
  const std::map<std::string, Tensor>& columns() const { return columns_; }

 private:
  std::map<std::string, Tensor> columns_;
  int64_t size_ = 0;
};

}  // namespace graft::data
