// A node of the backward graph: one per differentiable op application. It holds an edge to each
// input (the input's own node, or the leaf tensor whose .grad it accumulates) and a closure that
// maps the gradient of the op's output to gradients of its inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace graft::autograd {

class Node {
 public:
  // Returns one gradient per input, in input order; an undefined Tensor means "no gradient".
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

  struct Edge {
    std::shared_ptr<Node> node;        // the input's grad_fn, for non-leaf inputs
    std::shared_ptr<TensorImpl> leaf;  // the input itself, for leaves that require grad
    bool active() const { return node || leaf; }
  };

  Node(std::string name, const std::vector<Tensor>& inputs, BackwardFn backward, const Tensor& output);

  const std::string& name() const { return name_; }
  const std::vector<Edge>& next_edges() const { return edges_; }
  const Shape& output_shape() const { return output_shape_; }
  uint64_t sequence_nr() const { return sequence_nr_; }  // creation order, for a stable topological order

  // Runs the backward closure; throws AutogradError if the graph was freed by an earlier backward.
  std::vector<Tensor> apply(const Tensor& grad_output);
  void release();  // frees what the closure saved (after a backward without retain_graph)

  std::vector<TensorHook> pre_hooks;        // hooks registered on this node's output tensor
  std::weak_ptr<TensorImpl> output;          // for retain_grad()

 private:
  std::string name_;
  std::vector<Edge> edges_;
  BackwardFn backward_;
  Shape output_shape_;
  uint64_t sequence_nr_;
};

// True when an op with these inputs must record a node (grad mode on, some input requires grad).
bool needs_graph(std::initializer_list<const Tensor*> inputs);
bool needs_graph(const std::vector<Tensor>& inputs);

// Attaches a node to `output` when needs_graph(inputs); returns output. The closure must not
// capture `output` itself (that would be a reference cycle): capture saved(output).
Tensor record(const char* name, Tensor output, const std::vector<Tensor>& inputs, Node::BackwardFn backward);

// A backward for an op whose gradient graft does not implement: throws NotImplementedError
// naming the op when a backward pass reaches it (never returns zeros).
Node::BackwardFn backward_not_implemented(const std::string& op);

// An alias of t with no autograd slot, for closures to keep.
Tensor saved(const Tensor& t);

}  // namespace graft::autograd
