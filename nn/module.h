// Module: the unit a model is built from, as torch.nn.Module. A module owns named parameters,
// buffers and child modules, in registration order; names join with dots into the state-dict keys
// that Hugging Face checkpoints use ("encoder.layer.0.output.dense.weight").
//
// Identity rule: a registered Tensor handle never changes. Subclasses keep copies of the handles
// they register (`weight = register_parameter("weight", ...)`), and optimizers hold the same
// handles, so load_state_dict, reset_parameters and to() write into the existing tensors in place
// instead of swapping them.
#pragma once

#include <cstdint>
#include <memory>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace graft::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What load_state_dict found; problems are listed by key.
struct LoadReport {
  std::vector<std::string> missing;          // in the module, absent from the state dict
  std::vector<std::string> unexpected;       // in the state dict, not in the module
  std::vector<std::string> shape_mismatched; // "key: expected [..], got [..]"
  int64_t loaded = 0;
  bool clean() const { return missing.empty() && unexpected.empty() && shape_mismatched.empty(); }
  std::string str() const;
};

struct LoadOptions {
  bool strict = true;                     // missing or unexpected keys are an error
  bool ignore_mismatched_shapes = false;  // skip (and report) keys whose shapes differ, as HF's flag
};

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_name_; }

  // The single-tensor forward that Sequential chains. Modules with other signatures define their
  // own forward and leave this one throwing.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  // --- traversal: dotted names, registration order, parents before children ---
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_trainable_parameters() const;  // requires_grad only
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // Every module below this one (this one first, named ""), depth first.
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  // A parameter, buffer or module by dotted name; IndexError naming the closest level that exists.
  Tensor find_tensor(const std::string& dotted_name) const;
  std::shared_ptr<Module> find_module(const std::string& dotted_name) const;

  // --- state ---
  // Parameters and persistent buffers, as handles to the live tensors (detached, storage shared).
  std::map<std::string, Tensor> state_dict() const;
  // Checks every key first and changes nothing when it throws (ValueError for missing/unexpected
  // keys under strict, ShapeError for shape mismatches). Values are copied into the existing
  // tensors, converting dtype.
  LoadReport load_state_dict(const std::map<std::string, Tensor>& state, LoadOptions options = {});

  // --- modes ---
  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves/converts every parameter and buffer in place (handles kept; gradients dropped).
  // Floating-point tensors take `dtype`; integer buffers keep theirs.
  void to(Device device);
  void to(DType dtype);
  void to(Device device, DType dtype);

  // Sets requires_grad on the parameters whose dotted names match the glob (`*` matches any run of
  // characters, dots included; `?` one character). Returns how many matched; a glob that matches
  // nothing is a ValueError, since a typo would otherwise silently train (or freeze) everything.
  int64_t freeze(const std::string& glob = "*");
  int64_t unfreeze(const std::string& glob = "*");

  // Re-initialises with PyTorch's defaults; the base implementation recurses into the children.
  virtual void reset_parameters();

  // --- reporting ---
  int64_t num_parameters(bool trainable_only = false) const;
  // One line per module: name, type, parameters, trainable parameters; then the totals.
  std::string summary() const;
  // PyTorch's repr: "Linear(in_features=2, out_features=3, bias=true)", children indented.
  std::string repr() const;
  virtual std::string extra_repr() const { return ""; }

 protected:
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor value, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    register_child(name, module);
    return module;
  }
  void register_child(const std::string& name, std::shared_ptr<Module> module);

 private:
  struct Buffer {
    Tensor tensor;
    bool persistent;
  };
  void check_new_name(const std::string& name) const;
  void collect_parameters(const std::string& prefix, bool recurse, NamedTensors& out) const;
  void collect_buffers(const std::string& prefix, bool recurse, bool persistent_only, NamedTensors& out) const;
  void collect_modules(const std::string& prefix, std::vector<std::pair<std::string, const Module*>>& out) const;
  int64_t set_requires_grad(const std::string& glob, bool value, const char* op);
  void repr_into(std::ostream& out, int indent) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Buffer>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

std::ostream& operator<<(std::ostream& out, const Module& module);

// fnmatch-style glob without path semantics: `*` crosses dots.
bool glob_match(const std::string& glob, const std::string& text);

}  // namespace graft::nn
