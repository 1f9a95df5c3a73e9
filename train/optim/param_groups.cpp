#include "train/optim/param_groups.h"

#include <cmath>
#include <unordered_set>

namespace graft::optim {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

bool is_no_decay_name(const std::string& name) {
  return ends_with(name, "bias") || contains(name, "LayerNorm") || contains(name, "layer_norm") ||
         contains(name, "layernorm") || contains(name, "norm.");
}

std::vector<ParamGroup> decay_groups(const std::vector<std::pair<std::string, Tensor>>& named_params,
                                     double weight_decay, const DecayGroupOptions& options) {
  if (!std::isfinite(weight_decay) || weight_decay < 0.0)
    throw ValueError("decay_groups: weight_decay must be finite and >= 0, got " + std::to_string(weight_decay));
  ParamGroup decay, no_decay;
  decay.name = "decay";
  decay.weight_decay = weight_decay;
  no_decay.name = "no_decay";
  no_decay.weight_decay = 0.0;
  decay.lr = no_decay.lr = options.lr;
  std::unordered_set<std::string> seen;
  for (const auto& [name, tensor] : named_params) {
    if (!tensor.defined()) throw ValueError("decay_groups: parameter '" + name + "' is an undefined tensor");
    if (!seen.insert(name).second) throw ValueError("decay_groups: parameter name '" + name + "' appears twice");
    if (!tensor.requires_grad()) continue;  // frozen: nothing to optimize
    bool exempt = is_no_decay_name(name) || (options.no_decay_for_1d && tensor.dim() == 1);
    for (const auto& part : options.extra_no_decay) exempt = exempt || contains(name, part);
    ParamGroup& group = exempt ? no_decay : decay;
    group.params.push_back(tensor);
    group.param_names.push_back(name);
  }
  return {std::move(decay), std::move(no_decay)};
}

}  // namespace graft::optim
