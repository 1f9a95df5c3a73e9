// Splitting named parameters into a weight-decay group and a no-decay group, as Hugging Face's
// Trainer does: biases and normalisation weights (and, by default, every 1-D parameter) get no
// weight decay, since shrinking them towards zero only hurts.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "train/optim/optimizer.h"

namespace graft::optim {

struct DecayGroupOptions {
  double lr = 1e-3;                       // lr of both groups
  bool no_decay_for_1d = true;            // any 1-D parameter goes to "no_decay"
  std::vector<std::string> extra_no_decay;  // more name substrings that mean no decay
};

// True for names ending in "bias" or containing "LayerNorm", "layer_norm", "layernorm" or "norm.".
bool is_no_decay_name(const std::string& name);

// Returns {"decay" group with weight_decay, "no_decay" group with 0}, in that order and both present
// even when one is empty (so checkpoints always see the same groups). Parameters with
// requires_grad false are skipped; param_names are filled. Throws ValueError for an undefined
// tensor, a repeated name, or a negative/non-finite weight_decay.
std::vector<ParamGroup> decay_groups(const std::vector<std::pair<std::string, Tensor>>& named_params,
                                     double weight_decay, const DecayGroupOptions& options = {});

}  // namespace graft::optim
