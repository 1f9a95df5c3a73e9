// Gradient clipping and finiteness checks over a list of parameters, as torch.nn.utils'
// clip_grad_norm_ / clip_grad_value_. Parameters without a grad are ignored. Grads are scaled in
// place when contiguous; a non-contiguous grad is replaced by a scaled contiguous copy.
// f32/f64 grads, all on the CPU or all on one GPU (one call per device); norms accumulate in f64.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace graft::optim {

// Scales all grads by max_norm / (total_norm + 1e-6) when that is < 1, where total_norm is the
// norm_type-norm of all grads together (norm_type > 0, or +infinity for the max-abs norm).
// Returns total_norm before clipping (0 when no parameter has a grad). With error_if_nonfinite a
// NaN/Inf total norm throws NumericError and leaves the grads unchanged; without it an Inf norm
// zeroes the grads (coefficient 0, as torch) and a NaN norm leaves them as they are (they already
// hold a NaN; torch would spread it to every grad).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                      bool error_if_nonfinite = false);

// Clamps every grad element to [-clip_value, clip_value] (clip_value finite and >= 0).
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

// False when any grad holds a NaN or an Inf (for the trainer's overflow detection).
bool grads_are_finite(const std::vector<Tensor>& params);

}  // namespace graft::optim
