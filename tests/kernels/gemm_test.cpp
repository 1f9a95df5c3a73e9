// The fast f32 GEMM (oneDNN where built with it) against the reference loops and a naive
// double-precision triple loop, on fresh random inputs at sizes that are not tile multiples.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/gemm/gemm.h"

using graft::kernels::GemmShape;

namespace {

struct Case {
  int64_t batch, M, N, K;
  bool trans_a, trans_b, broadcast_b;
};

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

TEST(Gemm, FastPathMatchesReferenceAndF64) {
  std::mt19937 rng(std::random_device{}());  // fresh inputs every run
  const std::vector<Case> cases{{1, 1, 1, 1, false, false, false},    {1, 7, 97, 129, false, false, false},
                                {1, 97, 7, 33, true, false, false},    {1, 33, 65, 17, false, true, false},
                                {1, 129, 31, 257, true, true, false},  {3, 17, 19, 23, false, false, false},
                                {4, 9, 11, 13, true, true, true},      {2, 64, 64, 64, false, true, true}};
  for (const Case& c : cases) {
    GemmShape s;
    s.batch = c.batch;
    s.M = c.M;
    s.N = c.N;
    s.K = c.K;
    s.trans_a = c.trans_a;
    s.trans_b = c.trans_b;
    s.lda = c.trans_a ? c.M : c.K;
    s.ldb = c.trans_b ? c.K : c.N;
    s.batch_stride_a = c.M * c.K;
    s.batch_stride_b = c.broadcast_b ? 0 : c.K * c.N;
    auto a = random_vector(static_cast<size_t>(c.batch * c.M * c.K), rng);
    auto b = random_vector(static_cast<size_t>((c.broadcast_b ? 1 : c.batch) * c.K * c.N), rng);
    std::vector<float> fast(static_cast<size_t>(c.batch * c.M * c.N), NAN), ref(fast.size(), NAN);  // poisoned
    graft::kernels::gemm_cpu(s, a.data(), b.data(), fast.data());
    graft::kernels::gemm_reference(s, a.data(), b.data(), ref.data());
    double max_err = 0, max_ref = 0;
    bool any_nonzero = false;
    for (int64_t bt = 0; bt < c.batch; ++bt)
      for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = 0; j < c.N; ++j) {
          double exact = 0;
          for (int64_t k = 0; k < c.K; ++k) {
            const double av = a[static_cast<size_t>(bt * s.batch_stride_a + (c.trans_a ? k * s.lda + i : i * s.lda + k))];
            const double bv = b[static_cast<size_t>(bt * s.batch_stride_b + (c.trans_b ? j * s.ldb + k : k * s.ldb + j))];
            exact += av * bv;
          }
          const size_t o = static_cast<size_t>((bt * c.M + i) * c.N + j);
          max_err = std::max(max_err, std::abs(fast[o] - exact));
          max_ref = std::max(max_ref, std::abs(ref[o] - exact));
          any_nonzero |= fast[o] != 0.0f;
        }
    const double tol = 1e-5 * std::sqrt(static_cast<double>(c.K)) * 8;
    EXPECT_TRUE(any_nonzero);
    EXPECT_LE(max_err, tol) << "fast path, case M=" << c.M << " N=" << c.N << " K=" << c.K;
    EXPECT_LE(max_ref, tol) << "reference, case M=" << c.M << " N=" << c.N << " K=" << c.K;
    // The fast kernel may be at most a few times less accurate than the plain loops.
    EXPECT_LE(max_err, 4 * max_ref + 1e-6);
  }
}
