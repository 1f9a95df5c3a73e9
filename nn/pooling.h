// Pooling a sequence of hidden states into one vector, as sentence-transformers does it:
// all-MiniLM-L6-v2's sentence embedding is l2_normalize(mean_pool(last_hidden_state, mask)).
// N batch, S sequence length, E features.
#pragma once

#include "tensor/tensor.h"

namespace graft::nn {

// hidden [N, S, E] floating; attention_mask [N, S] (1 = real token, 0 = padding; i32/i64/bool/
// floating). The mean over each row's real tokens -> [N, E]; a row without one gives zeros (the
// count is clamped at 1e-9, as sentence-transformers'). Differentiable in hidden.
Tensor mean_pool(const Tensor& hidden, const Tensor& attention_mask);

// x / max(||x||_2, eps) along `dim`, as torch.nn.functional.normalize. Differentiable (a zero
// vector gets a zero gradient).
Tensor l2_normalize(const Tensor& x, int64_t dim = -1, double eps = 1e-12);

}  // namespace graft::nn
