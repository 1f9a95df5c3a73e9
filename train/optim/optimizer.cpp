#include "train/optim/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <unordered_set>

#include "autograd/ops.h"
#include "tensor/factory.h"

namespace graft::optim {

namespace {

void check_non_negative(const ParamGroup& group, const char* field, double value) {
  if (!std::isfinite(value) || value < 0.0)
    throw ValueError("optimizer group '" + group.name + "': " + field + " must be finite and >= 0, got " +
                     std::to_string(value));
}

nlohmann::json hyper_parameters_to_json(const ParamGroup& g) {
  return {{"name", g.name},
          {"lr", g.lr},
          {"initial_lr", g.initial_lr},
          {"weight_decay", g.weight_decay},
          {"l1", g.l1},
          {"momentum", g.momentum},
          {"dampening", g.dampening},
          {"nesterov", g.nesterov},
          {"beta1", g.beta1},
          {"beta2", g.beta2},
          {"eps", g.eps},
          {"amsgrad", g.amsgrad}};
}

// Reads the hyper-parameters saved by hyper_parameters_to_json into `g` (params untouched).
void hyper_parameters_from_json(const nlohmann::json& j, ParamGroup& g) {
  g.lr = j.at("lr").get<double>();
  g.initial_lr = j.at("initial_lr").get<double>();
  g.weight_decay = j.at("weight_decay").get<double>();
  g.l1 = j.at("l1").get<double>();
  g.momentum = j.at("momentum").get<double>();
  g.dampening = j.at("dampening").get<double>();
  g.nesterov = j.at("nesterov").get<bool>();
  g.beta1 = j.at("beta1").get<double>();
  g.beta2 = j.at("beta2").get<double>();
  g.eps = j.at("eps").get<double>();
  g.amsgrad = j.at("amsgrad").get<bool>();
}

// "state.<group>.<index>.<buffer>" -> parts; false when the key has another form.
bool parse_state_key(const std::string& key, std::size_t& group, std::size_t& index, std::string& buffer) {
  const std::string prefix = "state.";
  if (key.rfind(prefix, 0) != 0) return false;
  std::size_t pos = prefix.size();
  auto read_number = [&](std::size_t& out) {
    std::size_t end = pos;
    while (end < key.size() && std::isdigit(static_cast<unsigned char>(key[end]))) ++end;
    if (end == pos || end - pos > 9 || end >= key.size() || key[end] != '.') return false;
    out = std::stoul(key.substr(pos, end - pos));
    pos = end + 1;
    return true;
  };
  if (!read_number(group) || !read_number(index)) return false;
  buffer = key.substr(pos);
  return !buffer.empty();
}

}  // namespace

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (auto& p : group.params) p.set_grad(Tensor());
}

void Optimizer::validate_group(const ParamGroup& group) const {
  check_non_negative(group, "lr", group.lr);
  check_non_negative(group, "weight_decay", group.weight_decay);
  check_non_negative(group, "l1", group.l1);
  if (std::isnan(group.initial_lr) || std::isinf(group.initial_lr))
    throw ValueError("optimizer group '" + group.name + "': initial_lr must be finite");
}

void Optimizer::add_param_groups(std::vector<ParamGroup> groups) {
  for (auto& group : groups) add_param_group(std::move(group));
}

void Optimizer::add_param_group(ParamGroup group) {
  const std::size_t index = groups_.size();
  if (group.name.empty()) group.name = "group" + std::to_string(index);
  for (const auto& other : groups_)
    if (other.name == group.name)
      throw ValueError(name() + ": a parameter group named '" + group.name + "' already exists");
  if (!group.param_names.empty() && group.param_names.size() != group.params.size())
    throw ValueError(name() + " group '" + group.name + "': " + std::to_string(group.param_names.size()) +
                     " param_names for " + std::to_string(group.params.size()) + " params");
  if (group.initial_lr < 0) group.initial_lr = group.lr;
  validate_group(group);

  std::unordered_set<const TensorImpl*> seen;
  for (const auto& other : groups_)
    for (const auto& p : other.params) seen.insert(p.impl());
  for (std::size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    const std::string label = "group '" + group.name + "' param " + std::to_string(i) +
                              (group.param_names.empty() ? "" : " ('" + group.param_names[i] + "')");
    if (!p.defined()) throw ValueError(name() + ": " + label + " is an undefined tensor");
    if (!p.is_leaf())
      throw ValueError(name() + ": " + label + " is not a leaf tensor (it has a grad_fn); optimize leaves only");
    if (p.dtype() != DType::f32 && p.dtype() != DType::f64)
      throw DTypeError(name() + ": " + label + " has dtype " + dtype_name(p.dtype()) + "; expected f32 or f64");
    if (!p.is_contiguous()) throw ValueError(name() + ": " + label + " is not contiguous");
    if (!seen.insert(p.impl()).second)
      throw ValueError(name() + ": " + label + " appears in more than one place among the parameter groups");
  }
  state_.emplace_back(group.params.size());
  groups_.push_back(std::move(group));
}

void Optimizer::begin_step() {
  for (const auto& group : groups_) validate_group(group);
  // Params appended to a group's list directly get fresh state.
  state_.resize(groups_.size());
  for (std::size_t g = 0; g < groups_.size(); ++g)
    if (state_[g].size() < groups_[g].params.size()) state_[g].resize(groups_[g].params.size());
  ++steps_taken_;
}

std::string Optimizer::describe_param(std::size_t group, std::size_t index) const {
  const ParamGroup& g = groups_.at(group);
  std::string s = "group '" + g.name + "' param " + std::to_string(index);
  if (index < g.param_names.size()) s += " ('" + g.param_names[index] + "')";
  return s;
}

Tensor Optimizer::checked_grad(std::size_t group, std::size_t index) const {
  const Tensor& p = groups_.at(group).params.at(index);
  Tensor grad = p.grad();
  if (!grad.defined()) return grad;
  if (!p.is_leaf()) throw ValueError(name() + ".step: " + describe_param(group, index) + " is not a leaf tensor");
  if (p.dtype() != DType::f32 && p.dtype() != DType::f64)
    throw DTypeError(name() + ".step: " + describe_param(group, index) + " has dtype " + dtype_name(p.dtype()) +
                     "; expected f32 or f64");
  // Parameters may live on the CPU or a GPU (each is updated where it lives); its grad must be there too.
  if (grad.device() != p.device())
    throw DeviceError(name() + ".step: " + describe_param(group, index) + " is on " + p.device().str() +
                      " but its grad is on " + grad.device().str());
  if (!p.is_contiguous()) throw ValueError(name() + ".step: " + describe_param(group, index) + " is not contiguous");
  if (grad.shape() != p.shape())
    throw ShapeError(name() + ".step: " + describe_param(group, index) + " has shape " + shape_str(p.shape()) +
                     " but its grad has shape " + shape_str(grad.shape()));
  if (grad.dtype() != p.dtype())
    throw DTypeError(name() + ".step: " + describe_param(group, index) + " is " + dtype_name(p.dtype()) +
                     " but its grad is " + dtype_name(grad.dtype()));
  return grad.is_contiguous() ? grad : grad.contiguous();
}

Optimizer::ParamState& Optimizer::param_state(std::size_t group, std::size_t index) {
  return state_.at(group).at(index);
}

Optimizer::State Optimizer::state_dict() const {
  State out;
  nlohmann::json groups = nlohmann::json::array();
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    nlohmann::json j = hyper_parameters_to_json(group);
    nlohmann::json shapes = nlohmann::json::array(), steps = nlohmann::json::array();
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      shapes.push_back(group.params[i].shape());
      const bool has_state = g < state_.size() && i < state_[g].size();
      steps.push_back(has_state ? state_[g][i].step : 0);
      if (!has_state) continue;
      for (const auto& [buffer, tensor] : state_[g][i].buffers)
        // Saved on the CPU whatever the parameter's device, so checkpoints do not depend on the GPU.
        out.tensors["state." + std::to_string(g) + "." + std::to_string(i) + "." + buffer] =
            tensor.device().is_cpu() ? tensor.clone() : tensor.to(Device::cpu());
    }
    j["num_params"] = group.params.size();
    j["param_names"] = group.param_names;
    j["param_shapes"] = std::move(shapes);
    j["step"] = std::move(steps);
    groups.push_back(std::move(j));
  }
  out.meta = {{"optimizer", name()}, {"steps_taken", steps_taken_}, {"groups", std::move(groups)}};
  return out;
}

void Optimizer::load_state_dict(const State& state) {
  const std::string where = name() + ".load_state_dict: ";
  // Phase 1: build the new groups and state aside, validating as we go.
  std::vector<ParamGroup> new_groups = groups_;
  std::vector<std::vector<ParamState>> new_state(groups_.size());
  int64_t new_steps_taken = 0;
  try {
    const auto& meta = state.meta;
    if (!meta.is_object()) throw ValueError(where + "meta is not a JSON object");
    const std::string kind = meta.at("optimizer").get<std::string>();
    if (kind != name()) throw ValueError(where + "the state is of a " + kind + " optimizer, this is " + name());
    new_steps_taken = meta.at("steps_taken").get<int64_t>();
    if (new_steps_taken < 0) throw ValueError(where + "steps_taken is negative");
    const auto& groups = meta.at("groups");
    if (!groups.is_array() || groups.size() != groups_.size())
      throw ValueError(where + "the state has " + std::to_string(groups.is_array() ? groups.size() : 0) +
                       " parameter groups, this optimizer has " + std::to_string(groups_.size()));
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const auto& j = groups[g];
      ParamGroup& group = new_groups[g];
      const std::string saved_name = j.at("name").get<std::string>();
      if (saved_name != group.name)
        throw ValueError(where + "group " + std::to_string(g) + " is named '" + saved_name + "' in the state but '" +
                         group.name + "' here");
      const auto num_params = j.at("num_params").get<std::size_t>();
      if (num_params != group.params.size())
        throw ValueError(where + "group '" + group.name + "' has " + std::to_string(num_params) +
                         " params in the state but " + std::to_string(group.params.size()) + " here");
      const auto& shapes = j.at("param_shapes");
      const auto& steps = j.at("step");
      if (shapes.size() != num_params || steps.size() != num_params)
        throw ValueError(where + "group '" + group.name + "': param_shapes/step lengths differ from num_params");
      for (std::size_t i = 0; i < num_params; ++i) {
        const auto shape = shapes[i].get<Shape>();
        if (shape != group.params[i].shape())
          throw ShapeError(where + describe_param(g, i) + " has shape " + shape_str(group.params[i].shape()) +
                           " but the state was saved for shape " + shape_str(shape));
      }
      hyper_parameters_from_json(j, group);
      validate_group(group);
      new_state[g].resize(num_params);
      for (std::size_t i = 0; i < num_params; ++i) {
        new_state[g][i].step = steps[i].get<int64_t>();
        if (new_state[g][i].step < 0) throw ValueError(where + describe_param(g, i) + ": negative step count");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(where + "malformed meta: " + e.what());
  }

  const auto known = buffer_names();
  for (const auto& [key, tensor] : state.tensors) {
    std::size_t g = 0, i = 0;
    std::string buffer;
    if (!parse_state_key(key, g, i, buffer)) throw ValueError(where + "unexpected tensor key '" + key + "'");
    if (g >= new_groups.size() || i >= new_groups[g].params.size())
      throw ValueError(where + "tensor '" + key + "' names a parameter this optimizer does not have");
    if (std::find(known.begin(), known.end(), buffer) == known.end())
      throw ValueError(where + "tensor '" + key + "': " + name() + " keeps no buffer named '" + buffer + "'");
    const Tensor& p = new_groups[g].params[i];
    if (!tensor.defined()) throw ValueError(where + "tensor '" + key + "' is undefined");
    if (tensor.shape() != p.shape())
      throw ShapeError(where + "tensor '" + key + "' has shape " + shape_str(tensor.shape()) + " but " +
                       describe_param(g, i) + " has shape " + shape_str(p.shape()));
    if (tensor.dtype() != p.dtype())
      throw DTypeError(where + "tensor '" + key + "' is " + dtype_name(tensor.dtype()) + " but " +
                       describe_param(g, i) + " is " + dtype_name(p.dtype()));
    if (!tensor.device().is_cpu() && tensor.device() != p.device())
      throw DeviceError(where + "tensor '" + key + "' is on " + tensor.device().str() + " but " +
                        describe_param(g, i) + " is on " + p.device().str() + "; expected the CPU or the same device");
    new_state[g][i].buffers[buffer] = tensor;  // copied below, once everything checks out
  }
  for (std::size_t g = 0; g < new_groups.size(); ++g)
    for (std::size_t i = 0; i < new_state[g].size(); ++i)
      for (const auto& needed : required_buffers(new_groups[g], new_state[g][i].step))
        if (!new_state[g][i].buffers.count(needed))
          throw ValueError(where + describe_param(g, i) + " has had " + std::to_string(new_state[g][i].step) +
                           " updates but the state lacks its '" + needed + "' buffer");

  // Copies, each on its parameter's device. Only a failed allocation or copy can throw here, and
  // that leaves this optimizer unchanged: the copies go into new_state.
  for (std::size_t g = 0; g < new_state.size(); ++g)
    for (std::size_t i = 0; i < new_state[g].size(); ++i) {
      const Device device = new_groups[g].params[i].device();
      for (auto& [buffer, tensor] : new_state[g][i].buffers)
        tensor = tensor.device() == device ? tensor.contiguous().clone() : tensor.contiguous().to(device);
    }
  // Phase 2: commit (nothing below throws).
  groups_ = std::move(new_groups);
  state_ = std::move(new_state);
  steps_taken_ = new_steps_taken;
}

}  // namespace graft::optim
