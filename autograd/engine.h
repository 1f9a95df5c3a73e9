// The backward pass: an iterative topological walk of the graph below `root` (no recursion, so
// an unrolled recurrence thousands of nodes deep is fine). Nodes run in a fixed order (reverse
// creation order among the ready ones), and gradients reaching one node are summed in arrival
// order, so the result is the same every run.
#pragma once

#include "tensor/tensor.h"

namespace graft::autograd {

// Accumulates d(root)/d(leaf) * grad into each leaf's .grad. `grad` defaults to 1 for a
// one-element root; any other root needs it. Without retain_graph the graph's saved values are
// freed as it goes.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

}  // namespace graft::autograd
