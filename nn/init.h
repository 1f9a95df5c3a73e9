// Parameter initialisation, as torch.nn.init: each function fills an existing tensor in place
// (under no-grad, so it works on parameters that require grad) from a Philox generator
// (the default one unless given), and returns it.
//
// Fans follow torch: for a weight [out, in, k...], fan_in = in * prod(k), fan_out = out * prod(k).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace graft::nn::init {

enum class FanMode { fan_in, fan_out };
enum class Nonlinearity { linear, sigmoid, tanh, relu, leaky_relu, selu };

// torch.nn.init.calculate_gain; `param` is leaky_relu's negative slope (default 0.01).
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& tensor);  // ValueError below 2 dims

Tensor& constant_(Tensor& tensor, double value);
Tensor& zeros_(Tensor& tensor);
Tensor& ones_(Tensor& tensor);
Tensor& uniform_(Tensor& tensor, double low = 0.0, double high = 1.0, Generator* generator = nullptr);
Tensor& normal_(Tensor& tensor, double mean = 0.0, double std = 1.0, Generator* generator = nullptr);
// Normal(mean, std) redrawn until inside [low, high] (BERT's initializer_range uses +-2 std).
Tensor& trunc_normal_(Tensor& tensor, double mean = 0.0, double std = 1.0, double low = -2.0, double high = 2.0,
                      Generator* generator = nullptr);
Tensor& xavier_uniform_(Tensor& tensor, double gain = 1.0, Generator* generator = nullptr);
Tensor& xavier_normal_(Tensor& tensor, double gain = 1.0, Generator* generator = nullptr);
// `a` is the negative slope for leaky_relu; torch's Linear default is kaiming_uniform_(a = sqrt(5)).
Tensor& kaiming_uniform_(Tensor& tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                         Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* generator = nullptr);
Tensor& kaiming_normal_(Tensor& tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                        Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* generator = nullptr);
// A (semi-)orthogonal matrix from the QR decomposition of a normal draw, signs fixed by R's
// diagonal as torch does; tensors with more than 2 dims are treated as [size(0), rest].
Tensor& orthogonal_(Tensor& tensor, double gain = 1.0, Generator* generator = nullptr);

}  // namespace graft::nn::init
