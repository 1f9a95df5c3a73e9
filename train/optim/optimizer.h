// Optimizer: the base of SGD, Adam and AdamW. It owns the parameter groups (each with its own
// hyper-parameters), the per-parameter state (update count and named buffers such as
// "momentum_buffer" or "exp_avg") and its checkpoint form.
//
// Invariants:
//  - step() updates parameters in place under no-grad: a parameter's Tensor handle and storage
//    stay the same, so modules and the optimizer keep sharing them.
//  - Parameters whose grad is undefined (frozen, or unused in this forward) are skipped, and their
//    state (step count, buffers) does not advance, as torch does.
//  - Buffers are created lazily on a parameter's first update (torch's layout), so a fresh
//    optimizer's state_dict has no tensors.
//  - Parameters must be leaves, f32 or f64, contiguous, on the CPU or a GPU; a parameter may appear
//    only once. State buffers live on their parameter's device; state_dict holds them on the CPU.
//  - Changing hyper-parameters through param_groups() is expected (schedulers do it); changing the
//    params lists there is not: use add_param_group.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/tensor.h"

namespace graft::optim {

// One set of parameters with its own hyper-parameters. Fields an optimizer does not use are
// ignored by it (SGD ignores the betas, Adam the momentum) but are still saved in its state.
struct ParamGroup {
  std::string name;                      // e.g. "decay", "no_decay", "layer.3"; "group<i>" when empty
  std::vector<Tensor> params;
  std::vector<std::string> param_names;  // optional (empty or same length); for reports/errors
  double lr = 1e-3;
  double initial_lr = -1;     // base lr schedulers scale; set to lr when the optimizer takes the group if < 0
  double weight_decay = 0.0;  // SGD/Adam: L2 added to the gradient; AdamW: decoupled
  double l1 = 0.0;            // L1 penalty: l1 * sign(p) added to the gradient
  double momentum = 0.0, dampening = 0.0;  // SGD
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam/AdamW
  bool amsgrad = false;
};

class Optimizer {
 public:
  // The checkpoint form: buffers by name ("state.<group index>.<param index>.<buffer>") and the
  // rest as JSON (optimizer kind, step counts, each group's hyper-parameters and param shapes).
  struct State {
    std::map<std::string, Tensor> tensors;
    nlohmann::json meta;
  };

  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual void step() = 0;  // one update of every parameter that has a grad
  void zero_grad();         // grads become undefined (set_to_none, torch 2.x default)

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Validates the group (hyper-parameters, params, no param already in another group), then
  // fills its defaults: name "group<i>" when empty, initial_lr = lr when negative.
  void add_param_group(ParamGroup group);
  int64_t steps_taken() const { return steps_taken_; }
  virtual std::string name() const = 0;  // "SGD", "Adam", "AdamW"

  virtual State state_dict() const;
  // Validates everything first (kind, group names and counts, param counts and shapes, buffer
  // names, shapes and dtypes, hyper-parameters) and throws ValueError / ShapeError / DTypeError
  // naming what differs; on error nothing changes. Buffers are copied, never shared. The groups'
  // hyper-parameters (lr, betas, ...) come from the state, as torch's; their params stay.
  virtual void load_state_dict(const State& state);

 protected:
  Optimizer() = default;
  void add_param_groups(std::vector<ParamGroup> groups);  // add_param_group for each, in order

  struct ParamState {
    int64_t step = 0;                        // updates this parameter has had
    std::map<std::string, Tensor> buffers;   // created on the first update
  };

  // Throws ValueError naming the group when a hyper-parameter is out of range. The base checks
  // lr, weight_decay and l1 (finite, >= 0); subclasses add their own.
  virtual void validate_group(const ParamGroup& group) const;
  // Every buffer name this optimizer may keep per parameter, and those a parameter with `step`
  // updates under `group` must have (checked on load).
  virtual std::vector<std::string> buffer_names() const = 0;
  virtual std::vector<std::string> required_buffers(const ParamGroup& group, int64_t step) const { return {}; }

  // Starts a step: re-validates every group's hyper-parameters (a scheduler may have set a bad
  // lr) and counts the step.
  void begin_step();
  // The gradient of parameter `index` of group `group` as a contiguous tensor of the parameter's
  // dtype, or undefined when it has none. Throws when the parameter is not a leaf, not f32/f64,
  // its grad is not on the parameter's device, or it is not contiguous.
  Tensor checked_grad(std::size_t group, std::size_t index) const;
  ParamState& param_state(std::size_t group, std::size_t index);
  // "group 'decay' param 2 ('encoder.bias')": for error messages.
  std::string describe_param(std::size_t group, std::size_t index) const;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param], grows with the groups
  int64_t steps_taken_ = 0;
};

// Elements at which the update loops switch from one thread to OpenMP's team.
inline constexpr int64_t kParallelUpdateAbove = 1 << 15;

}  // namespace graft::optim
