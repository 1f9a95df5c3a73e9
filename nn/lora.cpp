#include "nn/lora.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

namespace graft::nn {

namespace {

// PEFT's adapter files name tensors after the wrapped model: "base_model.model.<path>".
constexpr const char* kPeftPrefix = "base_model.model.";

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::string number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);  // shortest exact round trip
  return std::string(buffer, result.ptr);
}

// Every Linear under root (root itself named ""), in module order; the Linears inside adapters
// (lora_A, lora_B) are not candidates for adapting, so they are left out.
std::vector<std::pair<std::string, const Linear*>> linears(const Module& root) {
  std::vector<std::pair<std::string, const Linear*>> out;
  std::set<const Module*> adapter_parts;
  for (const auto& [name, module] : root.named_modules()) {  // parents before children
    const auto* linear = dynamic_cast<const Linear*>(module);
    if (!linear || adapter_parts.count(linear)) continue;
    if (auto adapter = std::dynamic_pointer_cast<LoraAdapter>(linear->adapter())) {
      adapter_parts.insert(adapter->lora_A.get());
      adapter_parts.insert(adapter->lora_B.get());
    }
    out.emplace_back(name, linear);
  }
  return out;
}

struct Adapted {
  std::string name;
  LoraAdapter* adapter;
};

std::vector<Adapted> adapted_layers(const Module& root) {
  std::vector<Adapted> out;
  for (const auto& [name, linear] : linears(root)) {
    if (auto* adapter = dynamic_cast<LoraAdapter*>(linear->adapter().get())) out.push_back({name, adapter});
  }
  return out;
}

std::vector<Adapted> require_adapters(const Module& root, const char* op) {
  auto adapted = adapted_layers(root);
  if (adapted.empty()) throw ValueError(std::string(op) + ": " + root.type_name() + " has no LoRA adapter (call apply_lora first)");
  return adapted;
}

std::string list_some(const std::vector<std::string>& names, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out.empty() ? "none" : out;
}

void check_options(const LoraOptions& options) {
  if (options.rank < 1) throw ValueError("apply_lora: LoraOptions::rank must be >= 1, got " + std::to_string(options.rank));
  if (!std::isfinite(options.alpha) || options.alpha <= 0.0)
    throw ValueError("apply_lora: LoraOptions::alpha must be finite and > 0, got " + number(options.alpha));
  if (!(options.dropout >= 0.0 && options.dropout < 1.0))
    throw ValueError("apply_lora: LoraOptions::dropout must be in [0, 1), got " + number(options.dropout));
  if (options.targets.empty()) throw ValueError("apply_lora: LoraOptions::targets is empty; name the Linear layers to adapt");
  for (const auto& glob : options.targets) {
    if (glob.empty()) throw ValueError("apply_lora: LoraOptions::targets holds an empty glob");
  }
}

}  // namespace

// --- LoraAdapter ---

LoraAdapter::LoraAdapter(const Linear& host, const LoraOptions& options)
    : options_(options), rank_(options.rank), alpha_(options.alpha), host_weight_(host.weight) {
  const Tensor& weight = host.weight;
  const int64_t out_features = weight.size(0), in_features = weight.size(1);
  // Linear's own init is PEFT's for A: kaiming_uniform(a = sqrt(5)).
  lora_A = std::make_shared<Linear>(LinearOptions{in_features, rank_, false, weight.dtype()});
  lora_B = std::make_shared<Linear>(LinearOptions{rank_, out_features, false, weight.dtype()});
  init::zeros_(lora_B->weight);
  lora_dropout = std::make_shared<Dropout>(options.dropout);
  for (auto& [name, module] : modules()) {
    module->train(host.is_training());  // an adapter added to a model in eval mode drops nothing
    if (weight.device() != Device::cpu()) module->to(weight.device());
  }
}

Tensor LoraAdapter::forward(const Tensor& input, const Tensor& base_output) {
  if (merged_) return base_output;  // the update is in the host's weight already
  return base_output + lora_B->forward(lora_A->forward(lora_dropout->forward(input))) * scale();
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> LoraAdapter::modules() const {
  return {{"lora_A", lora_A}, {"lora_B", lora_B}, {"lora_dropout", lora_dropout}};
}

Tensor LoraAdapter::delta_weight() const {
  NoGradGuard no_grad;
  return matmul(lora_B->weight, lora_A->weight) * scale();
}

void LoraAdapter::merge() {
  if (merged_) throw ValueError("LoraAdapter::merge: already merged");
  NoGradGuard no_grad;
  ops::copy_into(host_weight_, host_weight_ + delta_weight());
  merged_ = true;
}

void LoraAdapter::unmerge() {
  if (!merged_) throw ValueError("LoraAdapter::unmerge: not merged");
  NoGradGuard no_grad;
  ops::copy_into(host_weight_, host_weight_ - delta_weight());
  merged_ = false;
}

// --- applying ---

namespace {

Linear& mutable_linear(Module& root, const std::string& name) {
  return dynamic_cast<Linear&>(name.empty() ? root : *root.find_module(name));
}

}  // namespace

std::vector<std::string> apply_lora(Module& root, const LoraOptions& options) {
  check_options(options);
  const auto candidates = linears(root);
  std::vector<bool> chosen(candidates.size(), false);
  for (const auto& glob : options.targets) {
    bool matched = false;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (!glob_match(glob, candidates[i].first)) continue;
      matched = chosen[i] = true;
    }
    if (!matched) {
      std::vector<std::string> names;
      for (const auto& [name, linear] : candidates) names.push_back(name.empty() ? "\"\" (the root)" : name);
      throw ValueError("apply_lora: target '" + glob + "' matches no Linear of " + root.type_name() +
                       " (Linear layers: " + list_some(names) + ")");
    }
  }
  std::vector<std::string> adapted;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (chosen[i] && candidates[i].second->adapter())
      throw ValueError("apply_lora: Linear '" + candidates[i].first + "' already has an adapter");
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!chosen[i]) continue;
    Linear& host = mutable_linear(root, candidates[i].first);
    host.set_adapter(std::make_shared<LoraAdapter>(host, options));
    adapted.push_back(candidates[i].first);
  }
  if (options.freeze_base) {
    std::set<const TensorImpl*> adapter_parameters;
    for (const auto& layer : adapted_layers(root)) {
      adapter_parameters.insert(layer.adapter->lora_A->weight.impl());
      adapter_parameters.insert(layer.adapter->lora_B->weight.impl());
    }
    for (auto& [name, parameter] : root.named_parameters()) {
      if (adapter_parameters.count(parameter.impl())) continue;
      parameter.requires_grad_(false);
      parameter.set_grad(Tensor());
    }
  }
  return adapted;
}

// --- merging ---

void merge_lora(Module& root) {
  for (auto& layer : require_adapters(root, "merge_lora")) {
    if (!layer.adapter->merged()) layer.adapter->merge();
  }
}

void unmerge_lora(Module& root) {
  for (auto& layer : require_adapters(root, "unmerge_lora")) {
    if (layer.adapter->merged()) layer.adapter->unmerge();
  }
}

// --- files ---

void save_lora(const Module& root, const std::filesystem::path& path) {
  const auto adapted = require_adapters(root, "save_lora");
  const LoraAdapter& first = *adapted.front().adapter;
  std::map<std::string, Tensor> tensors;
  std::vector<std::string> targets;
  for (const auto& layer : adapted) {
    const LoraAdapter& adapter = *layer.adapter;
    if (adapter.rank() != first.rank() || adapter.alpha() != first.alpha() ||
        adapter.options().dropout != first.options().dropout) {
      throw ValueError("save_lora: adapters differ in config ('" + adapted.front().name + "' has r=" +
                       std::to_string(first.rank()) + " alpha=" + number(first.alpha()) + " dropout=" +
                       number(first.options().dropout) + ", '" + layer.name + "' has r=" +
                       std::to_string(adapter.rank()) + " alpha=" + number(adapter.alpha()) + " dropout=" +
                       number(adapter.options().dropout) + "); one file holds one config");
    }
    for (const auto& glob : adapter.options().targets) {
      if (std::find(targets.begin(), targets.end(), glob) == targets.end()) targets.push_back(glob);
    }
    tensors[join(layer.name, "lora_A.weight")] = adapter.lora_A->weight.detach();
    tensors[join(layer.name, "lora_B.weight")] = adapter.lora_B->weight.detach();
  }
  save_safetensors(path, tensors,
                   {{"r", std::to_string(first.rank())},
                    {"lora_alpha", number(first.alpha())},
                    {"lora_dropout", number(first.options().dropout)},
                    {"target_modules", nlohmann::json(targets).dump()}});
}

namespace {

// A metadata number, when the file has the key.
template <class T>
std::optional<T> metadata_number(const SafetensorsFile& file, const std::string& key) {
  const auto& metadata = file.metadata();
  const auto it = metadata.find(key);
  if (it == metadata.end()) return std::nullopt;
  T value{};
  const std::string& text = it->second;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size())
    throw FormatError("load_lora: " + file.label() + ": metadata '" + key + "' is not a number: '" + text + "'");
  return value;
}

}  // namespace

void load_lora(Module& root, const std::filesystem::path& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  const auto adapted = require_adapters(root, "load_lora");
  const auto rank = metadata_number<int64_t>(file, "r");
  const auto alpha = metadata_number<double>(file, "lora_alpha");
  std::map<std::string, Tensor> wanted;  // name -> the live parameter
  for (const auto& layer : adapted) {
    const LoraAdapter& adapter = *layer.adapter;
    const std::string where = "load_lora: " + file.label() + ": layer '" + layer.name + "' ";
    if (adapter.merged()) throw ValueError(where + "is merged; call unmerge_lora before loading adapters");
    if (rank && *rank != adapter.rank())
      throw ValueError(where + "has r=" + std::to_string(adapter.rank()) + " but the file has r=" + std::to_string(*rank));
    if (alpha && *alpha != adapter.alpha())
      throw ValueError(where + "has lora_alpha=" + number(adapter.alpha()) + " but the file has lora_alpha=" +
                       number(*alpha));
    wanted[join(layer.name, "lora_A.weight")] = adapter.lora_A->weight;
    wanted[join(layer.name, "lora_B.weight")] = adapter.lora_B->weight;
  }
  std::map<std::string, std::string> stored;  // our name -> the file's
  std::vector<std::string> unexpected, missing;
  for (const std::string& name : file.names()) {
    const bool peft = name.rfind(kPeftPrefix, 0) == 0;
    const std::string ours = peft ? name.substr(std::char_traits<char>::length(kPeftPrefix)) : name;
    if (wanted.count(ours)) {
      stored[ours] = name;
    } else {
      unexpected.push_back(name);
    }
  }
  for (const auto& [name, parameter] : wanted) {
    if (!stored.count(name)) missing.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty()) {
    throw ValueError("load_lora: " + file.label() + " does not fit the adapters of " + root.type_name() +
                     " (was apply_lora given the same targets?): missing tensors: " + list_some(missing) +
                     "; unexpected tensors: " + list_some(unexpected));
  }
  std::vector<std::pair<Tensor, Tensor>> copies;  // (parameter, loaded), applied only when all fit
  for (const auto& [name, parameter] : wanted) {
    const TensorInfo info = file.info(stored.at(name));
    if (info.shape != parameter.shape())
      throw ShapeError("load_lora: " + file.label() + ": tensor '" + stored.at(name) + "' has shape " +
                       shape_str(info.shape) + ", the adapter expects " + shape_str(parameter.shape()));
    if (!is_floating(info.dtype))
      throw FormatError("load_lora: " + file.label() + ": tensor '" + stored.at(name) + "' is " +
                        dtype_name(info.dtype) + ", expected a floating dtype");
    copies.emplace_back(parameter, file.load(stored.at(name), parameter.dtype()));
  }
  NoGradGuard no_grad;
  for (auto& [parameter, loaded] : copies) ops::copy_into(parameter, loaded);
}

}  // namespace graft::nn
