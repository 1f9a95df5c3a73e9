// Make tensors, run an op, take a gradient: graft from an outside project.
#include <cmath>
#include <cstdio>

#include <graft.h>

int main() {
  graft::Tensor w = graft::from_vector<float>({1, 2, 3, 4}, {2, 2}).requires_grad_();
  graft::Tensor x = graft::from_vector<float>({0.5f, -1.0f}, {2, 1});
  graft::Tensor loss = graft::tanh(graft::matmul(w, x)).sum();
  loss.backward();
  std::printf("loss = %.6f\ndloss/dw = %s\n", loss.item(), w.grad().str().c_str());
  // d/dw_ij tanh((Wx)_i) = (1 - tanh^2((Wx)_i)) x_j; (Wx) = [-1.5, -2.5]
  const double expect = (1 - std::pow(std::tanh(-1.5), 2)) * 0.5;
  const double got = w.grad().to_vector<float>()[0];
  if (std::abs(got - expect) > 1e-5) {
    std::printf("wrong gradient: %f vs %f\n", got, expect);
    return 1;
  }
  return 0;
}
