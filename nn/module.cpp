#include "nn/module.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "autograd/grad_mode.h"
#include "tensor/ops.h"

namespace graft::nn {

std::string LoadReport::str() const {
  std::ostringstream out;
  auto list = [&](const char* what, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    out << what << " (" << keys.size() << "):";
    for (const auto& k : keys) out << "\n  " << k;
    out << "\n";
  };
  list("missing keys", missing);
  list("unexpected keys", unexpected);
  list("shape mismatches", shape_mismatched);
  if (clean()) out << "all " << loaded << " keys loaded";
  return out.str();
}

Tensor Module::forward(const Tensor&) {
  throw NotImplementedError(type_name_ + " has no single-tensor forward(); call its own forward");
}

// --- registration ---

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw ValueError(type_name_ + ": a member name must be non-empty and contain no '.', got '" + name + "'");
  }
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& entry) { return entry.first == name; });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_)) {
    throw ValueError(type_name_ + ": '" + name + "' is already registered");
  }
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name);
  if (!value.defined()) throw ValueError(type_name_ + ": parameter '" + name + "' is undefined");
  if (!is_floating(value.dtype())) {
    throw DTypeError(type_name_ + ": parameter '" + name + "' must be floating point, got " +
                     dtype_name(value.dtype()));
  }
  // A parameter is a leaf: cut any graph the initial value came from.
  Tensor leaf = value.is_leaf() ? value : value.detach();
  leaf.requires_grad_(requires_grad);
  parameters_.emplace_back(name, leaf);
  return leaf;
}

Tensor Module::register_buffer(const std::string& name, Tensor value, bool persistent) {
  check_new_name(name);
  if (!value.defined()) throw ValueError(type_name_ + ": buffer '" + name + "' is undefined");
  buffers_.push_back({name, Buffer{value.detach(), persistent}});
  return buffers_.back().second.tensor;
}

void Module::register_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  if (!module) throw ValueError(type_name_ + ": child module '" + name + "' is null");
  children_.emplace_back(name, std::move(module));
}

// --- traversal ---

static std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

void Module::collect_parameters(const std::string& prefix, bool recurse, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters_) out.emplace_back(join(prefix, name), tensor);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect_parameters(join(prefix, name), true, out);
}

void Module::collect_buffers(const std::string& prefix, bool recurse, bool persistent_only,
                             NamedTensors& out) const {
  for (const auto& [name, buffer] : buffers_) {
    if (!persistent_only || buffer.persistent) out.emplace_back(join(prefix, name), buffer.tensor);
  }
  if (!recurse) return;
  for (const auto& [name, child] : children_) {
    child->collect_buffers(join(prefix, name), true, persistent_only, out);
  }
}

void Module::collect_modules(const std::string& prefix,
                             std::vector<std::pair<std::string, const Module*>>& out) const {
  out.emplace_back(prefix, this);
  for (const auto& [name, child] : children_) child->collect_modules(join(prefix, name), out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect_parameters("", recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters(recurse)) out.push_back(tensor);
  return out;
}

NamedTensors Module::named_trainable_parameters() const {
  NamedTensors out;
  for (auto& entry : named_parameters()) {
    if (entry.second.requires_grad()) out.push_back(entry);
  }
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect_buffers("", recurse, false, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out;
  collect_modules("", out);
  return out;
}

std::shared_ptr<Module> Module::find_module(const std::string& dotted_name) const {
  const Module* current = this;
  std::shared_ptr<Module> found;
  std::string walked;
  std::istringstream parts(dotted_name);
  std::string part;
  while (std::getline(parts, part, '.')) {
    auto it = std::find_if(current->children_.begin(), current->children_.end(),
                           [&](const auto& entry) { return entry.first == part; });
    if (it == current->children_.end()) {
      std::string names;
      for (const auto& [name, child] : current->children_) names += (names.empty() ? "" : ", ") + name;
      throw IndexError("no module '" + dotted_name + "': '" + (walked.empty() ? type_name_ : walked) +
                       "' has no child '" + part + "' (children: " + (names.empty() ? "none" : names) + ")");
    }
    found = it->second;
    current = found.get();
    walked = join(walked, part);
  }
  if (!found) throw IndexError("find_module: empty name");
  return found;
}

Tensor Module::find_tensor(const std::string& dotted_name) const {
  const auto dot = dotted_name.rfind('.');
  const Module* owner = this;
  std::shared_ptr<Module> holder;
  if (dot != std::string::npos) {
    holder = find_module(dotted_name.substr(0, dot));
    owner = holder.get();
  }
  const std::string leaf = dot == std::string::npos ? dotted_name : dotted_name.substr(dot + 1);
  for (const auto& [name, tensor] : owner->parameters_) {
    if (name == leaf) return tensor;
  }
  for (const auto& [name, buffer] : owner->buffers_) {
    if (name == leaf) return buffer.tensor;
  }
  throw IndexError("no parameter or buffer '" + dotted_name + "' in " + owner->type_name_);
}

// --- state ---

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out[name] = tensor.detach();
  NamedTensors buffers;
  collect_buffers("", true, true, buffers);
  for (auto& [name, tensor] : buffers) out[name] = tensor.detach();
  return out;
}

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& state, LoadOptions options) {
  std::map<std::string, Tensor> own = state_dict();
  LoadReport report;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source), applied only when all checks pass
  for (const auto& [name, target] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
      continue;
    }
    const Tensor& source = it->second;
    if (!source.defined() || source.shape() != target.shape()) {
      report.shape_mismatched.push_back(name + ": expected " + shape_str(target.shape()) + ", got " +
                                        (source.defined() ? shape_str(source.shape()) : "undefined"));
      continue;
    }
    copies.emplace_back(target, source);
  }
  for (const auto& [name, tensor] : state) {
    if (!own.count(name)) report.unexpected.push_back(name);
  }
  if (!report.shape_mismatched.empty() && !options.ignore_mismatched_shapes) {
    throw ShapeError("load_state_dict into " + type_name_ + ": nothing loaded; " + report.str());
  }
  if (options.strict && (!report.missing.empty() || !report.unexpected.empty())) {
    throw ValueError("load_state_dict into " + type_name_ + " (strict): nothing loaded; " + report.str());
  }
  NoGradGuard no_grad;
  for (auto& [target, source] : copies) ops::copy_into(target, source);
  report.loaded = static_cast<int64_t>(copies.size());
  return report;
}

// --- modes ---

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

// Moves/converts every parameter and buffer: all conversions are made first, and the impls are
// rewritten in place (so every handle sees the new data) only when all of them succeeded.
static void move_all(const NamedTensors& tensors, std::optional<Device> device, std::optional<DType> dtype) {
  std::vector<std::pair<Tensor, Tensor>> moves;  // (live tensor, its replacement)
  {
    NoGradGuard no_grad;
    for (const auto& [name, tensor] : tensors) {
      Tensor moved = tensor.detach();
      // Cast on the CPU side first: casting is a host op today, moving is not an op at all.
      if (dtype && is_floating(moved.dtype()) && moved.dtype() != *dtype) moved = ops::cast(moved, *dtype);
      if (device && moved.device() != *device) moved = ops::to_device(moved, *device);
      if (moved.impl()->storage != tensor.impl()->storage || moved.dtype() != tensor.dtype()) {
        moves.emplace_back(tensor, moved);
      }
    }
  }
  for (auto& [tensor, moved] : moves) {
    TensorImpl& impl = *tensor.impl();
    impl.storage = moved.impl()->storage;
    impl.shape = moved.shape();
    impl.strides = moved.strides();
    impl.offset = moved.offset();
    impl.dtype = moved.dtype();
    impl.grad.reset();  // a gradient of the old dtype/device no longer fits
  }
}

static NamedTensors parameters_and_buffers(const Module& module) {
  NamedTensors all = module.named_parameters();
  for (auto& entry : module.named_buffers()) all.push_back(entry);
  return all;
}

void Module::to(Device device) { move_all(parameters_and_buffers(*this), device, std::nullopt); }

void Module::to(DType dtype) {
  if (!is_floating(dtype)) throw DTypeError("Module::to: parameters need a floating dtype, got " + std::string(dtype_name(dtype)));
  move_all(parameters_and_buffers(*this), std::nullopt, dtype);
}

void Module::to(Device device, DType dtype) {
  if (!is_floating(dtype)) throw DTypeError("Module::to: parameters need a floating dtype, got " + std::string(dtype_name(dtype)));
  move_all(parameters_and_buffers(*this), device, dtype);
}

// --- freezing ---

bool glob_match(const std::string& glob, const std::string& text) {
  // Iterative wildcard match with single-star backtracking: linear in practice.
  size_t g = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = t;
    } else if (g < glob.size() && (glob[g] == '?' || glob[g] == text[t])) {
      ++g;
      ++t;
    } else if (star != std::string::npos) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

int64_t Module::set_requires_grad(const std::string& glob, bool value, const char* op) {
  int64_t matched = 0;
  auto params = named_parameters();
  for (auto& [name, tensor] : params) {
    if (!glob_match(glob, name)) continue;
    tensor.requires_grad_(value);
    if (!value) tensor.set_grad(Tensor());
    ++matched;
  }
  if (matched == 0) {
    std::string some;
    for (size_t i = 0; i < params.size() && i < 5; ++i) some += (i ? ", " : "") + params[i].first;
    throw ValueError(std::string(op) + "('" + glob + "') matched no parameter of " + type_name_ +
                     " (parameters include: " + (some.empty() ? "none" : some) + ")");
  }
  return matched;
}

int64_t Module::freeze(const std::string& glob) { return set_requires_grad(glob, false, "freeze"); }
int64_t Module::unfreeze(const std::string& glob) { return set_requires_grad(glob, true, "unfreeze"); }

void Module::reset_parameters() {
  for (auto& [name, child] : children_) child->reset_parameters();
}

// --- reporting ---

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t total = 0;
  for (auto& [name, tensor] : named_parameters()) {
    if (!trainable_only || tensor.requires_grad()) total += tensor.numel();
  }
  return total;
}

void Module::repr_into(std::ostream& out, int indent) const {
  out << type_name_ << "(" << extra_repr();
  if (children_.empty()) {
    out << ")";
    return;
  }
  out << "\n";
  for (const auto& [name, child] : children_) {
    out << std::string(indent + 2, ' ') << "(" << name << "): ";
    child->repr_into(out, indent + 2);
    out << "\n";
  }
  out << std::string(indent, ' ') << ")";
}

std::string Module::repr() const {
  std::ostringstream out;
  repr_into(out, 0);
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Module& module) { return out << module.repr(); }

}  // namespace graft::nn
