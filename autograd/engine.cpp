#include "autograd/engine.h"

#include <queue>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/factory.h"
#include "tensor/ops.h"

namespace graft::autograd {

namespace {

Tensor run_hooks(const std::vector<TensorHook>& hooks, Tensor grad) {
  for (const auto& hook : hooks) {
    Tensor replaced = hook(grad);
    if (replaced.defined()) {
      if (replaced.shape() != grad.shape())
        throw AutogradError("a gradient hook returned shape " + shape_str(replaced.shape()) + " for a gradient of shape " +
                            shape_str(grad.shape()));
      grad = replaced;
    }
  }
  return grad;
}

void check_grad(const std::string& where, const Tensor& grad, const Shape& expected) {
  if (grad.shape() != expected)
    throw AutogradError(where + ": gradient of shape " + shape_str(grad.shape()) + " for a tensor of shape " +
                        shape_str(expected));
}

void accumulate_leaf(TensorImpl& leaf, Tensor grad) {
  grad = run_hooks(leaf.hooks, grad);
  if (grad.dtype() != leaf.dtype) grad = ops::cast(grad, leaf.dtype);
  if (!leaf.grad) {
    // Own the buffer: the incoming gradient may alias another tensor's data.
    Tensor owned = empty(grad.shape(), TensorOptions(grad.dtype()).with_device(grad.device()));
    ops::copy_into(owned, grad);
    leaf.grad = owned.impl_ptr();
  } else {
    Tensor sum = ops::binary(ops::BinaryOp::add, Tensor(leaf.grad), grad);
    leaf.grad = sum.impl_ptr();
  }
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  if (!root.requires_grad())
    throw AutogradError("backward: tensor of shape " + shape_str(root.shape()) +
                        " does not require grad and has no grad_fn");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    if (root.numel() != 1)
      throw AutogradError("backward: a gradient can be implied only for one-element outputs; this output has shape " +
                          shape_str(root.shape()) + ", so pass the gradient");
    grad = ones(root.shape(), TensorOptions(root.dtype()).with_device(root.device()));
  }
  check_grad("backward", grad, root.shape());
  NoGradGuard no_grad;

  if (!root.grad_fn()) {  // a leaf: its gradient is the seed itself
    accumulate_leaf(*root.impl(), grad);
    return;
  }

  // Count, for each node under the root, how many edges lead into it.
  std::unordered_map<Node*, int> dependencies;
  {
    std::vector<Node*> stack{root.grad_fn().get()};
    dependencies[root.grad_fn().get()] = 0;
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const auto& e : n->next_edges()) {
        if (!e.node) continue;
        auto [it, inserted] = dependencies.try_emplace(e.node.get(), 0);
        ++it->second;
        if (inserted) stack.push_back(e.node.get());
      }
    }
  }

  struct Later {
    bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
  };
  std::priority_queue<Node*, std::vector<Node*>, Later> ready;  // newest node first
  std::unordered_map<Node*, Tensor> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep_alive;  // nodes stay alive while queued
  buffers[root.grad_fn().get()] = grad;
  keep_alive[root.grad_fn().get()] = root.grad_fn();
  ready.push(root.grad_fn().get());

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    const auto& edges = node->next_edges();
    auto buffered = buffers.find(node);
    std::vector<Tensor> input_grads(edges.size());
    if (buffered != buffers.end()) {  // else no gradient reached it: only release its inputs
      Tensor g = run_hooks(node->pre_hooks, buffered->second);
      buffers.erase(buffered);
      if (auto out = node->output.lock(); out && out->retains_grad) accumulate_leaf(*out, g);
      input_grads = node->apply(g);
    }
    for (size_t i = 0; i < edges.size(); ++i) {
      const auto& e = edges[i];
      const Tensor& gi = input_grads[i];
      if (!e.active()) continue;
      if (e.node) {
        Node* next = e.node.get();
        if (gi.defined()) {
          check_grad(node->name() + " backward (input " + std::to_string(i) + ")", gi, next->output_shape());
          auto& buffer = buffers[next];
          buffer = buffer.defined() ? ops::binary(ops::BinaryOp::add, buffer, gi) : gi;
        }
        keep_alive.try_emplace(next, e.node);
        if (--dependencies[next] == 0) ready.push(next);
      } else if (gi.defined()) {
        check_grad(node->name() + " backward (input " + std::to_string(i) + ")", gi, e.leaf->shape);
        accumulate_leaf(*e.leaf, gi);
      }
    }
    if (!retain_graph) node->release();
    keep_alive.erase(node);
  }
}

}  // namespace graft::autograd
