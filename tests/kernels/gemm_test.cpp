// The fast f32 GEMM (oneDNN where built with it) against the reference loops and a naive
// double-precision triple loop, on fresh random inputs at sizes that are not tile multiples.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <tuple>
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

namespace {

// Naive C = op(A) op(B) in double for any GemmShape (leading dims and batch strides as given).
template <class T>
std::vector<double> naive(const GemmShape& s, const std::vector<T>& a, const std::vector<T>& b) {
  std::vector<double> c(static_cast<size_t>(s.batch * s.M * s.N));
  for (int64_t bt = 0; bt < s.batch; ++bt)
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < s.K; ++k)
          acc += double(a[static_cast<size_t>(bt * s.batch_stride_a + (s.trans_a ? k * s.lda + i : i * s.lda + k))]) *
                 double(b[static_cast<size_t>(bt * s.batch_stride_b + (s.trans_b ? j * s.ldb + k : k * s.ldb + j))]);
        c[static_cast<size_t>((bt * s.M + i) * s.N + j)] = acc;
      }
  return c;
}

// Runs gemm_cpu and gemm_reference on fresh inputs for every combination of transposes, with
// padded leading dims and optional broadcast of either operand; checks both against naive().
template <class T>
void check_all_layouts(int64_t batch, int64_t M, int64_t N, int64_t K, std::mt19937& rng, double tol_per_sqrt_k) {
  std::normal_distribution<double> dist;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int bcast = 0; bcast < 3; ++bcast) {  // 0: none, 1: A broadcast, 2: B broadcast
        GemmShape s;
        s.batch = batch;
        s.M = M;
        s.N = N;
        s.K = K;
        s.trans_a = ta;
        s.trans_b = tb;
        s.lda = (ta ? M : K) + 3;  // padded rows
        s.ldb = (tb ? K : N) + 1;
        const int64_t a_rows = ta ? K : M, b_rows = tb ? N : K;
        s.batch_stride_a = bcast == 1 ? 0 : a_rows * s.lda;
        s.batch_stride_b = bcast == 2 ? 0 : b_rows * s.ldb;
        std::vector<T> a(static_cast<size_t>((bcast == 1 ? 1 : batch) * a_rows * s.lda));
        std::vector<T> b(static_cast<size_t>((bcast == 2 ? 1 : batch) * b_rows * s.ldb));
        for (auto& v : a) v = static_cast<T>(dist(rng));
        for (auto& v : b) v = static_cast<T>(dist(rng));
        std::vector<T> fast(static_cast<size_t>(batch * M * N), T(NAN)), ref(fast.size(), T(NAN));
        graft::kernels::gemm_cpu(s, a.data(), b.data(), fast.data());
        graft::kernels::gemm_reference(s, a.data(), b.data(), ref.data());
        const auto exact = naive(s, a, b);
        const double tol = tol_per_sqrt_k * std::sqrt(static_cast<double>(std::max<int64_t>(K, 1))) * 8;
        bool nonzero = false;
        for (size_t i = 0; i < exact.size(); ++i) {
          ASSERT_NEAR(fast[i], exact[i], tol) << "fast b=" << batch << " M=" << M << " N=" << N << " K=" << K
                                              << " ta=" << ta << " tb=" << tb << " bcast=" << bcast << " i=" << i;
          ASSERT_NEAR(ref[i], exact[i], tol) << "reference b=" << batch << " M=" << M << " N=" << N << " K=" << K
                                             << " ta=" << ta << " tb=" << tb << " bcast=" << bcast << " i=" << i;
          nonzero |= fast[i] != T(0);
        }
        EXPECT_TRUE(nonzero);
      }
}

}  // namespace

TEST(Gemm, EveryLayoutOddSizesF32) {
  std::mt19937 rng(std::random_device{}());
  for (auto [batch, M, N, K] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 1}, {1, 1, 7, 1}, {2, 7, 1, 97}, {3, 97, 7, 1}, {1, 129, 97, 7}, {2, 33, 129, 65}}) {
    check_all_layouts<float>(batch, M, N, K, rng, 1e-5);
  }
}

TEST(Gemm, EveryLayoutOddSizesF64) {
  std::mt19937 rng(std::random_device{}());
  for (auto [batch, M, N, K] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 1}, {2, 7, 1, 97}, {3, 97, 7, 1}, {1, 129, 33, 65}}) {
    check_all_layouts<double>(batch, M, N, K, rng, 1e-14);
  }
}

TEST(Gemm, EmptyDimensions) {
  GemmShape s;
  s.batch = 2;
  s.M = 3;
  s.N = 4;
  s.K = 0;
  s.lda = 1;
  s.ldb = 4;
  std::vector<float> c(24, NAN), cr(24, NAN);
  float dummy = 0;
  graft::kernels::gemm_cpu(s, &dummy, &dummy, c.data());
  graft::kernels::gemm_reference(s, &dummy, &dummy, cr.data());
  for (float v : c) EXPECT_EQ(v, 0.0f);  // K = 0: C is all zeros, not left as it was
  for (float v : cr) EXPECT_EQ(v, 0.0f);
}

TEST(Gemm, ReportsItsPath) {
  // Not a correctness check: records in the log which f32 path the tests above exercised.
  std::cout << "gemm_cpu f32 path: " << (graft::kernels::gemm_uses_onednn() ? "oneDNN" : "graft loops") << "\n";
  SUCCEED();
}
