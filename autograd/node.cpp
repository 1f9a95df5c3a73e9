#include "autograd/node.h"

#include <atomic>

#include "tensor/grad_mode.h"
#include "tensor/ops.h"

namespace graft::autograd {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
}

Node::Node(std::string name, const std::vector<Tensor>& inputs, BackwardFn backward, const Tensor& output)
    : name_(std::move(name)), backward_(std::move(backward)), output_shape_(output.shape()),
      sequence_nr_(next_sequence_nr++) {
  edges_.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    Edge e;
    if (in.defined() && in.requires_grad()) {
      if (in.grad_fn()) e.node = in.grad_fn();
      else e.leaf = in.impl_ptr();
    }
    edges_.push_back(std::move(e));
  }
}

std::vector<Tensor> Node::apply(const Tensor& grad_output) {
  if (!backward_)
    throw AutogradError(name_ + ": trying to backward through the graph a second time (its saved values were "
                        "freed); pass retain_graph=true to the first backward()");
  std::vector<Tensor> grads = backward_(grad_output);
  if (grads.size() != edges_.size())
    throw AutogradError(name_ + ": backward returned " + std::to_string(grads.size()) + " gradients for " +
                        std::to_string(edges_.size()) + " inputs");
  return grads;
}

void Node::release() { backward_ = nullptr; }

bool needs_graph(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_graph(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(const char* name, Tensor output, const std::vector<Tensor>& inputs, Node::BackwardFn backward) {
  if (!needs_graph(inputs)) return output;
  if (!is_floating(output.dtype())) return output;  // integer/bool outputs carry no gradient
  if (output.requires_grad() || output.grad_fn()) output = saved(output);  // ops may return an input as is
  auto node = std::make_shared<Node>(name, inputs, std::move(backward), output);
  node->output = output.impl_ptr();
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
  return output;
}

Node::BackwardFn backward_not_implemented(const std::string& op) {
  return [op](const Tensor&) -> std::vector<Tensor> {
    throw NotImplementedError(op + ": backward is not implemented");
  };
}

Tensor saved(const Tensor& t) {
  if (!t.defined()) return t;
  return ops::as_strided(t, t.shape(), t.strides(), t.offset());
}

}  // namespace graft::autograd
