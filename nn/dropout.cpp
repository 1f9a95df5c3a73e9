#include "nn/dropout.h"

#include <sstream>

#include "autograd/ops.h"

namespace graft::nn {

Dropout::Dropout(double p, Generator* generator) : Module("Dropout"), p_(0), generator_(generator) { set_p(p); }

void Dropout::set_p(double p) {
  if (!(p >= 0.0 && p <= 1.0)) throw ValueError("Dropout: p must be in [0, 1], got " + std::to_string(p));
  p_ = p;
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p_, is_training(), generator_); }

std::string Dropout::extra_repr() const {
  std::ostringstream out;
  out << "p=" << p_;
  return out.str();
}

}  // namespace graft::nn
