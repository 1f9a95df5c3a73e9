// LoRA (Hu et al. 2021, "Low-Rank Adaptation of Large Language Models"), as Hugging Face PEFT's
// LoraConfig(r, lora_alpha, lora_dropout, target_modules) on Linear layers:
//
//   y = x W^T + b + (dropout(x) A^T B^T) * (alpha / r)
//
// with A [r, in] drawn as torch's Linear default (kaiming_uniform, a = sqrt(5)) and B [out, r]
// zeros, so a fresh adapter leaves the model's outputs unchanged. The adapter's modules hang under
// the Linear as lora_A, lora_B (Linear layers without bias) and lora_dropout, so its parameters are
// "<linear>.lora_A.weight" and "<linear>.lora_B.weight": PEFT's adapter-file names without their
// "base_model.model." prefix. The base model's own names do not change.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/dropout.h"
#include "nn/linear.h"

namespace graft::nn {

struct LoraOptions {
  int64_t rank = 8;      // r
  double alpha = 8.0;    // lora_alpha; the update is scaled by alpha / r
  double dropout = 0.0;  // lora_dropout, on the adapter's input only
  // Globs over dotted module names ("*.attention.self.query"); `*` crosses dots, as Module::freeze.
  std::vector<std::string> targets;
  bool freeze_base = true;  // freeze every parameter of the root that is not an adapter's
};

// The low-rank update of one Linear (B A scaled by alpha / r), attached with Linear::set_adapter.
class LoraAdapter : public LinearAdapter {
 public:
  // Sized for `host`, on its weight's dtype and device; A is drawn from the default generator.
  LoraAdapter(const Linear& host, const LoraOptions& options);
  Tensor forward(const Tensor& input, const Tensor& base_output) override;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> modules() const override;

  int64_t rank() const { return rank_; }
  double alpha() const { return alpha_; }
  double scale() const { return alpha_ / static_cast<double>(rank_); }
  // B A * scale, [out, in]: what merging adds to the host's weight.
  Tensor delta_weight() const;

  // Folds the update into the host's weight (or takes it out again); while merged, forward adds
  // nothing. ValueError when already in the requested state.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }

  const LoraOptions& options() const { return options_; }  // the config it was made with

  std::shared_ptr<Linear> lora_A;  // weight [r, in]
  std::shared_ptr<Linear> lora_B;  // weight [out, r]
  std::shared_ptr<Dropout> lora_dropout;

 private:
  LoraOptions options_;
  int64_t rank_;
  double alpha_;
  Tensor host_weight_;  // the host's weight handle (handles never change), for merging
  bool merged_ = false;
};

// Attaches an adapter to every Linear under root whose dotted name matches one of options.targets
// (root itself is named ""); returns their names in module order. ValueError for a bad option, a
// glob that matches no Linear (a typo would otherwise silently adapt nothing), or a Linear that
// has an adapter already. Validates everything before changing anything.
std::vector<std::string> apply_lora(Module& root, const LoraOptions& options);

// Every adapter folded into its weight (inference at no extra cost), or taken out again (equal to
// the unmerged weight up to f32 rounding). Adapters already in the requested state are skipped;
// ValueError when root has no adapter.
void merge_lora(Module& root);
void unmerge_lora(Module& root);

// Writes only the adapter tensors, as safetensors (atomically), with metadata "r", "lora_alpha",
// "lora_dropout" and "target_modules" (a JSON list of the globs). ValueError when root has no
// adapter, or when its adapters differ in rank or alpha (one file holds one config).
void save_lora(const Module& root, const std::filesystem::path& path);

// Loads a save_lora file onto a model that has had apply_lora with the same config. The file's
// r and lora_alpha (when present) must equal every adapter's; its tensor names (with or without
// PEFT's "base_model.model." prefix) must be exactly the adapters', with their shapes.
// ValueError for a config mismatch, a missing or unexpected tensor, or merged adapters; ShapeError
// for a shape mismatch; each names the tensor or layer. On error the model is unchanged.
void load_lora(Module& root, const std::filesystem::path& path);

}  // namespace graft::nn
